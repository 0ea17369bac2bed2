"""AC steady-state metrics on waveforms built from closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbaflow import ac_metrics

F0 = 50.0
W0 = 2 * math.pi * F0


def _grid(seed: int = 1) -> np.ndarray:
    # A variable-step-like grid: uneven steps between 2 and 40 µs over 0.2 s.
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.uniform(2e-6, 40e-6, size=9000))


def test_fundamental_and_thd_closed_form():
    t = _grid()
    y = 0.3 + 12.0 * np.cos(W0 * t - 0.4) + 0.6 * np.cos(3 * W0 * t + 1.0) + 0.8 * np.sin(5 * W0 * t)
    m = ac_metrics.steady_window(t, F0, 5)
    c = ac_metrics.fundamental(t[m], y[m], F0)
    assert abs(c) == pytest.approx(12.0, rel=1e-9)
    assert np.angle(c) == pytest.approx(-0.4, abs=1e-9)
    assert ac_metrics.thd_pct(t[m], y[m], F0) == pytest.approx(100 * math.hypot(0.6, 0.8) / 12.0, rel=1e-9)


def test_client_server_metrics_closed_form():
    t = _grid(2)
    v_ref = 12.0 * np.sin(W0 * t)
    v = 11.88 * np.sin(W0 * t - math.radians(0.5)) + 0.12 * np.sin(7 * W0 * t)
    i_s = 0.23 * np.sin(W0 * t + 0.2)
    i_c = 0.5 * 0.23 * 1.02 * np.sin(W0 * t + 0.2 - math.radians(1.8))
    out = ac_metrics.client_server_metrics(t, v, i_s, i_c, v_ref, F0, k_gain=0.5)
    assert out["voltage_amplitude_error_pct"] == pytest.approx(-1.0, abs=1e-9)
    assert out["voltage_phase_error_deg"] == pytest.approx(-0.5, abs=1e-9)
    assert out["voltage_thd_pct"] == pytest.approx(100 * 0.12 / 11.88, rel=1e-9)
    assert out["client_tracking_error_pct"] == pytest.approx(2.0, abs=1e-9)
    assert out["phase_error_deg"] == pytest.approx(-1.8, abs=1e-9)
    assert out["phase_error_abs_deg"] == pytest.approx(1.8, abs=1e-9)


def test_transient_before_the_window_is_ignored_and_short_runs_refused():
    t = _grid(3)
    y = np.where(t < 0.05, 40.0 * np.sin(7 * W0 * t), 0.0) + 5.0 * np.cos(W0 * t)
    m = ac_metrics.steady_window(t, F0, 5)
    assert t[m][0] >= t[-1] - 0.1 - 1e-12
    assert ac_metrics.thd_pct(t[m], y[m], F0) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="less than 20 periods"):
        ac_metrics.steady_window(t, F0, 20)
