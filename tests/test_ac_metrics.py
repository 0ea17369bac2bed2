"""AC steady-state metrics on waveforms whose Fourier series are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simbaflow.select import sine_waveforms as ac_metrics

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


# --------------------------------------------------------------------------- start-up and k_gain step

PERIOD = 1 / F0


def _window_fundamental(pieces, a):
    """Closed-form fundamental of ``Σ coef·e^{−σ(t−t0)}·sin(ω0 t)`` on ``[start, end)`` pieces, window [a, a+T].

    ``sin(ω0 t)·e^{−jω0 t} = (1 − e^{−2jω0 t})/(2j)``, so each piece integrates
    to two exponentials over its part of the window.
    """
    def integral(s, t0, u, v):  # ∫_u^v e^{−s(t−t0)} dt
        return v - u if s == 0 else (np.exp(-s * (u - t0)) - np.exp(-s * (v - t0))) / s

    total = 0j
    for start, end, coef, sigma, t0 in pieces:
        u, v = max(a, start), min(a + PERIOD, end)
        if v > u:
            total += coef * (integral(sigma, t0, u, v)
                             - np.exp(-2j * W0 * t0) * integral(sigma + 2j * W0, t0, u, v)) / 2j
    return 2 * total / PERIOD


def _last_exit(ratio_at, lo, hi, band=0.02):
    """The last window end in [lo, hi] where ``ratio_at`` leaves the band (dense scan, then bisection)."""
    from scipy.optimize import brentq

    ends = np.arange(lo, hi, 1e-6)
    off = np.array([abs(ratio_at(e) - 1) - band for e in ends])
    k = np.flatnonzero(off > 0)[-1]
    return brentq(lambda e: abs(ratio_at(e) - 1) - band, ends[k], ends[k + 1], xtol=1e-12)


def test_startup_and_kgain_step_settling_closed_form():
    t = np.arange(0.0, 0.3 + 1e-12, 5e-6)  # fine grid: piecewise-linear error ~(ω0·dt)² ≈ 2.5e-6
    s = np.sin(W0 * t)
    tau_v, tau_c, tau_step, t1, t2, k_gain = 8e-3, 15e-3, 6e-3, 0.1, 0.2, 0.8
    # Load voltage 12·(1 − e^{−t/τv})·sin; server current 0.3·sin; the client's
    # amplitude rises as 1 − e^{−t/τc}, falls from 1 to 0.5 + 0.5·e^{−(t−t1)/τ}
    # after t1 (k_gain × 0.5), and jumps back to 1 at t2.
    v_pieces = [(0, np.inf, 12.0, 0, 0), (0, np.inf, -12.0, 1 / tau_v, 0)]
    c_pieces = [(0, t1, 1.0, 0, 0), (0, t1, -1.0, 1 / tau_c, 0),
                (t1, t2, 0.5, 0, 0), (t1, t2, 0.5, 1 / tau_step, t1), (t2, np.inf, 1.0, 0, 0)]
    envelope = np.where(t < t1, 1 - np.exp(-t / tau_c),
                        np.where(t < t2, 0.5 + 0.5 * np.exp(-(t - t1) / tau_step), 1.0))
    v = 12 * (1 - np.exp(-t / tau_v)) * s
    i_c = k_gain * 0.3 * envelope * s
    factor = np.where(t < t1 - 1e-9, 1.0, np.where(t < t2 - 1e-9, 0.5, 1.0))
    out = ac_metrics.transient_metrics(t, v, 0.3 * s, i_c, 12 * s, F0, k_gain, factor)

    def ratio(pieces, scale):
        return lambda end: abs(_window_fundamental(pieces, end - PERIOD)) / scale

    # The metric looks at window ends every T/200 = 100 µs: its figure is the
    # first of them after the exact last exit from the 2 % band.
    step = PERIOD / 200
    expected = _last_exit(ratio(v_pieces, 12.0), PERIOD, 0.1)
    # Sanity: the envelope term alone gives T + τv·ln((τv/T)(1 − e^{−T/τv})/0.02) = 43.3 ms;
    # the window's 2ω0 term moves it by about 1 ms.
    assert expected == pytest.approx(0.0433, abs=2e-3)
    assert expected <= out["startup_settling_s"] < expected + step + 1e-9
    expected = _last_exit(ratio(c_pieces, 1.0), PERIOD, t1)
    assert expected <= out["client_startup_settling_s"] < expected + step + 1e-9
    expected = _last_exit(ratio(c_pieces, 0.5), t1, t2) - t1
    assert expected <= out["kgain_step_settling_s"] < expected + step + 1e-9
    assert ac_metrics.factor_steps(t, factor) == [(pytest.approx(t1), 0.5), (pytest.approx(t2), 1.0)]


def test_settling_is_nan_without_step_or_when_never_settled():
    t = np.arange(0.0, 0.2 + 1e-12, 1e-5)
    s = np.sin(W0 * t)
    # The client stays 5 % high: it never enters the 2 % band.
    out = ac_metrics.transient_metrics(t, 12 * s, 0.3 * s, 1.05 * 0.3 * s, 12 * s, F0, 1.0)
    assert out["startup_settling_s"] == 0.0  # in the band from the first whole period
    assert math.isnan(out["client_startup_settling_s"])
    assert math.isnan(out["kgain_step_settling_s"])


def test_currents_taken_at_the_control_ticks():
    # The client current carries, between 100 µs ticks, a tent 0.2·cos(ω0 t)·s(t) with s = 0 at
    # every tick and mean 1/2: its continuous fundamental is |−0.3j + 0.1|, 5.4 % above the
    # server's 0.3, while the samples at the ticks are exactly the server's.
    t = np.arange(0.0, 0.1 + 1e-12, 1e-6)
    frac = (t / 1e-4) % 1.0
    tent = 1.0 - 2.0 * np.abs(frac - 0.5)
    i_s = 0.3 * np.sin(W0 * t)
    i_c = i_s + 0.2 * np.cos(W0 * t) * tent
    continuous = ac_metrics.transient_metrics(t, 12 * np.sin(W0 * t), i_s, i_c, 12 * np.sin(W0 * t), F0, 1.0)
    sampled = ac_metrics.transient_metrics(t, 12 * np.sin(W0 * t), i_s, i_c, 12 * np.sin(W0 * t), F0, 1.0,
                                           ts_s=1e-4)
    assert math.isnan(continuous["client_startup_settling_s"])
    assert sampled["client_startup_settling_s"] == 0.0
