"""Steady-state metrics of the AC client/server waveforms (simulated or recorded).

The last whole periods of f0 are fitted by least squares with the
fundamental and its harmonics, which is exact for periodic signals sampled
on any time grid (variable-step solver output included): amplitude and phase
of the fundamental, and THD from the harmonics.
"""

from __future__ import annotations

import math

import numpy as np

#: Harmonics fitted for the THD (up to 2 kHz at 50 Hz; the 200 kHz switching ripple is far above).
N_HARMONICS = 40


def steady_window(time_s: np.ndarray, f0_hz: float, n_periods: int) -> np.ndarray:
    """Mask of the last ``n_periods`` whole periods of ``f0_hz`` in ``time_s``.

    Raises
    ------
    ValueError
        When the waveform is shorter than ``n_periods`` periods.
    """
    t = np.asarray(time_s, dtype=float)
    span = n_periods / f0_hz
    if t[-1] - t[0] < span * (1 - 1e-9):
        raise ValueError(f"the waveform lasts {t[-1] - t[0]:.6g} s, less than {n_periods} periods of {f0_hz} Hz")
    return t >= t[-1] - span


def harmonics(time_s: np.ndarray, y: np.ndarray, f0_hz: float, n_harmonics: int = N_HARMONICS) -> np.ndarray:
    """Complex amplitudes ``c_h`` (h = 1..n) of ``y ≈ offset + Σ Re(c_h e^{j h ω0 t})``, by least squares.

    The samples are weighted by the time each one stands for, so a variable
    time step does not favour the densely sampled parts.
    """
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    w0 = 2.0 * math.pi * f0_hz
    dt = np.gradient(t)
    weight = np.sqrt(dt / dt.mean())
    cols = [np.ones_like(t)]
    for h in range(1, n_harmonics + 1):
        cols += [np.cos(h * w0 * t), np.sin(h * w0 * t)]
    basis = np.column_stack(cols)
    coef, *_ = np.linalg.lstsq(basis * weight[:, None], y * weight, rcond=None)
    a, b = coef[1::2], coef[2::2]
    return a - 1j * b


def fundamental(time_s, y, f0_hz: float, n_harmonics: int = N_HARMONICS) -> complex:
    """Complex amplitude of the fundamental (``|c|`` the peak amplitude, ``angle(c)`` the phase of a cosine)."""
    return complex(harmonics(time_s, y, f0_hz, n_harmonics)[0])


def thd_pct(time_s, y, f0_hz: float, n_harmonics: int = N_HARMONICS) -> float:
    """Total harmonic distortion, % of the fundamental: ``100·sqrt(Σ_{h≥2} |c_h|²)/|c_1|``."""
    c = harmonics(time_s, y, f0_hz, n_harmonics)
    return float(100.0 * np.sqrt(np.sum(np.abs(c[1:]) ** 2)) / abs(c[0]))


def client_server_metrics(time_s, v_load, i_server, i_client, v_ref, f0_hz: float, k_gain: float,
                          n_periods: int = 5) -> dict[str, float]:
    """Steady-state figures of one run, over its last ``n_periods`` periods of f0.

    Returns
    -------
    dict
        ``voltage_amplitude_error_pct`` (load voltage against the server's
        reference), ``voltage_phase_error_deg``, ``voltage_thd_pct``,
        ``client_tracking_error_pct`` (client current amplitude against
        ``k_gain`` times the server's), ``phase_error_deg`` (client current
        minus server current; negative when the client lags) and
        ``phase_error_abs_deg``.
    """
    t = np.asarray(time_s, dtype=float)
    m = steady_window(t, f0_hz, n_periods)
    c_v, c_ref = fundamental(t[m], np.asarray(v_load)[m], f0_hz), fundamental(t[m], np.asarray(v_ref)[m], f0_hz)
    c_s, c_c = fundamental(t[m], np.asarray(i_server)[m], f0_hz), fundamental(t[m], np.asarray(i_client)[m], f0_hz)
    phase = math.degrees(np.angle(c_c / c_s))
    return {
        "voltage_amplitude_error_pct": 100.0 * (abs(c_v) / abs(c_ref) - 1.0),
        "voltage_phase_error_deg": math.degrees(np.angle(c_v / c_ref)),
        "voltage_thd_pct": thd_pct(t[m], np.asarray(v_load)[m], f0_hz),
        "client_tracking_error_pct": 100.0 * (abs(c_c) / (k_gain * abs(c_s)) - 1.0),
        "phase_error_deg": phase,
        "phase_error_abs_deg": abs(phase),
    }
