"""AC steady-state metrics on waveforms whose Fourier series are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbaflow import ac_metrics

F0 = 50.0
W0 = 2 * math.pi * F0


def _triangle_corners(amplitude: float, shift_s: float, t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """A 50 Hz triangle wave given only at its corners (as a solver gives a switched current).

    ``amplitude·tri(t − shift)`` with tri = +1 at t = 0: its Fourier series is
    ``8/π² Σ_{odd h} cos(h ω0 (t − shift))/h²``.
    """
    corners = np.arange(0.0, t_end_s + 1e-12, 0.5 / F0) + shift_s
    values = amplitude * np.where(np.arange(corners.size) % 2 == 0, 1.0, -1.0)
    return corners, values


def test_sparse_triangle_fourier_series_exact():
    t, y = _triangle_corners(3.0, 1.3e-3, 0.2)
    tw, yw = ac_metrics.last_periods(t, y, F0, 5)
    c = ac_metrics.harmonics(tw, yw, F0, 7)
    expected = {h: 3.0 * 8 / (math.pi**2 * h**2) * np.exp(-1j * h * W0 * 1.3e-3) for h in (1, 3, 5, 7)}
    for h in range(1, 8):
        assert c[h - 1] == pytest.approx(expected.get(h, 0.0), abs=1e-12)
    # THD of a triangle: sqrt(Σ_{odd h≥3} 1/h⁴) = sqrt(π⁴/96 − 1), up to the 40th harmonic.
    thd = 100 * math.sqrt(sum(1 / h**4 for h in range(3, 41, 2)))
    assert ac_metrics.thd_pct(tw, yw, F0) == pytest.approx(thd, rel=1e-9)


def test_switching_ripple_does_not_bias_the_fundamental():
    # A 50 Hz sine plus a ±7.5 A 20 kHz triangle, given only at the ripple's corners.
    t = np.arange(0.0, 0.2 + 1e-12, 25e-6)
    ripple = 7.5 * np.where(np.arange(t.size) % 2 == 0, 1.0, -1.0)
    y = 0.25 * np.sin(W0 * t) + ripple
    # The sine is sampled only every 25 µs, so compare with the same piecewise-linear sine alone.
    c_total = ac_metrics.fundamental(*ac_metrics.last_periods(t, y, F0, 5), F0)
    c_sine = ac_metrics.fundamental(*ac_metrics.last_periods(t, 0.25 * np.sin(W0 * t), F0, 5), F0)
    assert c_total == pytest.approx(c_sine, abs=1e-9)
    assert abs(c_sine) == pytest.approx(0.25, rel=1e-5)


def test_client_server_metrics_closed_form():
    t = np.sort(np.random.default_rng(2).uniform(0.0, 0.2, 20000))
    t[0], t[-1] = 0.0, 0.2
    # Piecewise-linear sines on a fine grid: fundamentals within (ω0·dt)² of the exact ones.
    v_ref = 12.0 * np.sin(W0 * t)
    v = 11.88 * np.sin(W0 * t - math.radians(0.5)) + 0.12 * np.sin(7 * W0 * t)
    i_s = 0.23 * np.sin(W0 * t + 0.2)
    i_c = 0.5 * 0.23 * 1.02 * np.sin(W0 * t + 0.2 - math.radians(1.8))
    out = ac_metrics.client_server_metrics(t, v, i_s, i_c, v_ref, F0, k_gain=0.5)
    assert out["voltage_amplitude_error_pct"] == pytest.approx(-1.0, abs=1e-3)
    assert out["voltage_phase_error_deg"] == pytest.approx(-0.5, abs=1e-4)
    assert out["voltage_thd_pct"] == pytest.approx(100 * 0.12 / 11.88, rel=1e-3)
    assert out["client_tracking_error_pct"] == pytest.approx(2.0, abs=1e-3)
    assert out["phase_error_deg"] == pytest.approx(-1.8, abs=1e-4)
    assert out["phase_error_abs_deg"] == pytest.approx(1.8, abs=1e-4)


def test_window_is_the_last_whole_periods_and_short_runs_are_refused():
    t = np.linspace(0.0, 0.2, 4001)
    y = np.where(t < 0.05, 40.0 * np.sin(7 * W0 * t), 0.0) + 5.0 * np.cos(W0 * t)
    tw, yw = ac_metrics.last_periods(t, y, F0, 5)
    assert tw[0] == pytest.approx(0.1) and tw[-1] == 0.2
    assert ac_metrics.thd_pct(tw, yw, F0) < 1e-6
    with pytest.raises(ValueError, match="less than 20 periods"):
        ac_metrics.last_periods(t, y, F0, 20)
