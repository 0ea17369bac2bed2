"""Steady-state metrics of the AC client/server waveforms (simulated or recorded).

A transient job's waveform is the piecewise-linear curve through its points
(a switched circuit's solver keeps few points per switching period, mostly at
the switching instants). Its Fourier coefficients over the last whole periods
of f0 are integrated exactly, segment by segment, so the large switching
ripple of a sparsely sampled inductor current does not bias the fundamental
the way a point-wise fit would.
"""

from __future__ import annotations

import math

import numpy as np

#: Harmonics used for the THD (up to 2 kHz at 50 Hz).
N_HARMONICS = 40


def last_periods(time_s, y, f0_hz: float, n_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``n_periods`` whole periods of f0 of ``(time_s, y)``, the first point interpolated onto the start.

    Raises
    ------
    ValueError
        When the waveform is shorter than ``n_periods`` periods.
    """
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    start = t[-1] - n_periods / f0_hz
    if start < t[0] - 1e-12 * max(1.0, abs(t[0])):
        raise ValueError(f"the waveform lasts {t[-1] - t[0]:.6g} s, less than {n_periods} periods of {f0_hz} Hz")
    keep = t > start
    return np.concatenate([[start], t[keep]]), np.concatenate([[np.interp(start, t, y)], y[keep]])


def harmonics(time_s, y, f0_hz: float, n_harmonics: int = N_HARMONICS) -> np.ndarray:
    """Complex amplitudes ``c_h`` (h = 1..n) of the piecewise-linear ``y`` over its span.

    ``c_h = (2/T) ∫ y(t) e^{−j h ω0 t} dt``, integrated exactly on each
    segment; ``|c_h|`` is the peak amplitude and ``angle(c_h)`` the phase of a
    cosine. Exact Fourier coefficients when the span is whole periods of f0.
    """
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    dt = np.diff(t)
    seg = dt > 0  # repeated instants (events) add nothing
    t0, dt, y0 = t[:-1][seg], dt[seg], y[:-1][seg]
    slope = np.diff(y)[seg] / dt
    omega = 2.0 * math.pi * f0_hz * np.arange(1, n_harmonics + 1)[:, None]
    jw = 1j * omega
    f0 = np.exp(-jw * t0)
    f1 = np.exp(-jw * (t0 + dt))
    # ∫ (y0 + slope (t − t0)) e^{−jΩt} dt over [t0, t0 + dt], by parts.
    base = (f0 - f1) / jw
    ramp = -dt * f1 / jw + (f0 - f1) / jw**2
    integral = np.sum(y0 * base + slope * ramp, axis=1)
    return 2.0 * integral / (t[-1] - t[0])


def fundamental(time_s, y, f0_hz: float) -> complex:
    """Complex amplitude of the fundamental (see :func:`harmonics`)."""
    return complex(harmonics(time_s, y, f0_hz, 1)[0])


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
    def window(y):
        return last_periods(time_s, y, f0_hz, n_periods)

    c_v, c_ref = fundamental(*window(v_load), f0_hz), fundamental(*window(v_ref), f0_hz)
    c_s, c_c = fundamental(*window(i_server), f0_hz), fundamental(*window(i_client), f0_hz)
    phase = math.degrees(np.angle(c_c / c_s))
    return {
        "voltage_amplitude_error_pct": 100.0 * (abs(c_v) / abs(c_ref) - 1.0),
        "voltage_phase_error_deg": math.degrees(np.angle(c_v / c_ref)),
        "voltage_thd_pct": thd_pct(*window(v_load), f0_hz),
        "client_tracking_error_pct": 100.0 * (abs(c_c) / (k_gain * abs(c_s)) - 1.0),
        "phase_error_deg": phase,
        "phase_error_abs_deg": abs(phase),
    }
