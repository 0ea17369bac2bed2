"""Steady-state, start-up and k_gain-step metrics of the AC client/server waveforms (simulated or recorded).

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

#: What :func:`client_server_metrics` reports, in order.
STEADY_METRICS = ("voltage_amplitude_error_pct", "voltage_phase_error_deg", "voltage_thd_pct",
                  "client_tracking_error_pct", "phase_error_deg", "phase_error_abs_deg")
#: What :func:`transient_metrics` reports, in order.
TRANSIENT_METRICS = ("startup_settling_s", "client_startup_settling_s", "kgain_step_settling_s")
#: The client figures of :func:`client_server_metrics` on the full current waveforms (the others use
#: the currents at the control ticks, as the firmware samples them).
WAVEFORM_METRICS = ("client_tracking_error_waveform_pct", "phase_error_waveform_deg", "phase_error_waveform_abs_deg")
#: Steady-state figures the coupled-inverter analysis predicts too (``analytic_<name>`` in metrics.csv).
PREDICTED = ("phase_error_deg", "voltage_amplitude_error_pct", "client_tracking_error_pct")
#: Waveform figures it predicts (with its sampling-and-hold model).
WAVEFORM_PREDICTED = ("phase_error_waveform_deg", "client_tracking_error_waveform_pct")


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


def at_ticks(time_s, y, ts_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``y`` at the control ticks ``k·ts_s`` within the waveform's span (as the firmware samples it)."""
    t = np.asarray(time_s, dtype=float)
    ticks = ts_s * np.arange(math.ceil(t[0] / ts_s - 1e-9), math.floor(t[-1] / ts_s + 1e-9) + 1)
    return ticks, np.interp(ticks, t, np.asarray(y, dtype=float))


def client_server_metrics(time_s, v_load, i_server, i_client, v_ref, f0_hz: float, k_gain: float,
                          n_periods: int = 5, ts_s: float | None = None) -> dict[str, float]:
    """Steady-state figures of one run, over its last ``n_periods`` periods of f0.

    Parameters
    ----------
    ts_s
        Control period: the client figures then use the currents at the ticks
        ``k·ts_s``, as the firmware samples, regulates and records them. The
        PR loops make those samples keep ``k_gain``; between ticks the bridges
        hold their duties and both boards' currents carry the same extra term,
        so the currents' own fundamentals (the ``*_waveform`` figures) do not
        keep it (0.54 instead of 0.5 at ``k_gain`` 0.5 in the AC study).
        Without ``ts_s`` both sets are the waveforms'.

    Returns
    -------
    dict
        ``voltage_amplitude_error_pct`` (load voltage against the server's
        reference), ``voltage_phase_error_deg``, ``voltage_thd_pct``,
        ``client_tracking_error_pct`` (client current amplitude against
        ``k_gain`` times the server's), ``phase_error_deg`` (client current
        minus server current; negative when the client lags),
        ``phase_error_abs_deg``, and ``client_tracking_error_waveform_pct``,
        ``phase_error_waveform_deg``, ``phase_error_waveform_abs_deg`` on the
        full waveforms.
    """
    def window(t, y):
        return last_periods(t, y, f0_hz, n_periods)

    def fund(t, y):
        return fundamental(*window(t, y), f0_hz)

    c_v, c_ref = fund(time_s, v_load), fund(time_s, v_ref)
    w_s, w_c = fund(time_s, i_server), fund(time_s, i_client)
    if ts_s is None:
        c_s, c_c = w_s, w_c
    else:
        # Linear interpolation between ticks scales both fundamentals alike: the ratio is the samples'.
        c_s, c_c = fund(*at_ticks(time_s, i_server, ts_s)), fund(*at_ticks(time_s, i_client, ts_s))
    phase = math.degrees(np.angle(c_c / c_s))
    phase_w = math.degrees(np.angle(w_c / w_s))
    return {
        "voltage_amplitude_error_pct": 100.0 * (abs(c_v) / abs(c_ref) - 1.0),
        "voltage_phase_error_deg": math.degrees(np.angle(c_v / c_ref)),
        "voltage_thd_pct": thd_pct(*window(time_s, v_load), f0_hz),
        "client_tracking_error_pct": 100.0 * (abs(c_c) / (k_gain * abs(c_s)) - 1.0),
        "phase_error_deg": phase,
        "phase_error_abs_deg": abs(phase),
        "client_tracking_error_waveform_pct": 100.0 * (abs(w_c) / (k_gain * abs(w_s)) - 1.0),
        "phase_error_waveform_deg": phase_w,
        "phase_error_waveform_abs_deg": abs(phase_w),
    }


#: Tolerance band of the start-up and k_gain-step settling times (2 %).
SETTLING_BAND = 0.02


def _segment_integral(y0, slope, t0, dt, jw):
    """``∫ (y0 + slope (t − t0)) e^{−jw t} dt`` over ``[t0, t0 + dt]`` (arrays, exact)."""
    f0 = np.exp(-jw * t0)
    f1 = np.exp(-jw * (t0 + dt))
    return y0 * (f0 - f1) / jw + slope * (-dt * f1 / jw + (f0 - f1) / jw**2)


def sliding_fundamental(time_s, y, f0_hz: float, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental of the piecewise-linear ``y`` over each one-period window ``[t − 1/f0, t]``.

    Parameters
    ----------
    time_s, y
        The waveform (non-decreasing times).
    f0_hz
        Fundamental frequency; the window is one period.
    step_s
        Spacing of the window ends ``t``, from ``time_s[0] + 1/f0`` to the
        last instant (default: 1/200 of a period, 100 µs at 50 Hz).

    Returns
    -------
    (t_end_s, c)
        Window ends and the complex amplitudes there (as :func:`fundamental`
        of each window, integrated exactly, segment by segment).
    """
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    period_s = 1.0 / f0_hz
    step_s = period_s / 200.0 if step_s is None else step_s
    if t[-1] - t[0] < period_s:
        raise ValueError(f"the waveform lasts {t[-1] - t[0]:.6g} s, less than one period of {f0_hz} Hz")
    jw = 2j * math.pi * f0_hz
    dt = np.diff(t)
    slope = np.divide(np.diff(y), dt, out=np.zeros_like(dt), where=dt > 0)
    # Running integral F(t_i) of y e^{−jω0 t} at every point; a window is F(b) − F(a).
    cumulative = np.concatenate([[0.0], np.cumsum(_segment_integral(y[:-1], slope, t[:-1], dt, jw))])

    def integral_to(tau):
        # F(τ): the whole segments before τ, then the part of τ's own segment.
        k = np.clip(np.searchsorted(t, tau, side="right") - 1, 0, t.size - 2)
        return cumulative[k] + _segment_integral(y[k], slope[k], t[k], tau - t[k], jw)

    n = int(math.floor((t[-1] - t[0] - period_s) / step_s + 1e-9))
    t_end = t[0] + period_s + step_s * np.arange(n + 1)
    return t_end, 2.0 * (integral_to(t_end) - integral_to(t_end - period_s)) / period_s


def settling_after(t_s, ratio, start_s: float, stop_s: float = math.inf, band: float = SETTLING_BAND) -> float:
    """Time from ``start_s`` until ``ratio`` reaches and stays within ``1 ± band`` up to ``stop_s``.

    Only the instants ``start_s ≤ t ≤ stop_s`` count; the figure is measured to
    the first of them after the last one outside the band (0 when none is
    outside), and NaN when the last one is outside (never settled).
    """
    t_s, ratio = np.asarray(t_s, dtype=float), np.asarray(ratio, dtype=float)
    keep = (t_s >= start_s) & (t_s <= stop_s)
    t_s, outside = t_s[keep], ~(np.abs(ratio[keep] - 1.0) <= band)  # NaN counts as outside
    if t_s.size == 0 or outside[-1]:
        return math.nan
    if not outside.any():
        return 0.0
    return float(t_s[np.flatnonzero(outside)[-1] + 1] - start_s)


def factor_steps(time_s, factor) -> list[tuple[float, float]]:
    """``(time, new value)`` of each change of a piecewise-constant signal (the k_gain factor)."""
    t, f = np.asarray(time_s, dtype=float), np.asarray(factor, dtype=float)
    changes = np.flatnonzero(np.abs(np.diff(f)) > 1e-12 * max(1.0, float(np.max(np.abs(f))))) + 1
    return [(float(t[i]), float(f[i])) for i in changes]


def transient_metrics(time_s, v_load, i_server, i_client, v_ref, f0_hz: float, k_gain: float,
                      factor=None, ts_s: float | None = None) -> dict[str, float]:
    """Start-up and k_gain-step settling times of one run, on one-period sliding fundamentals.

    Parameters
    ----------
    factor
        The recorded multiplier of ``k_gain`` (piecewise constant, 1 when no
        step), or None for a run without a k_gain step.
    ts_s
        Control period: when given, the voltages and currents are taken at
        the control ticks ``k·ts_s``, as the firmware samples them (see
        :func:`client_server_metrics` for why their waveforms' fundamentals
        differ).

    Returns
    -------
    dict
        ``startup_settling_s``: time from the start for the load-voltage
        amplitude to reach and stay within 2 % of the reference's;
        ``client_startup_settling_s``: the same for the client-current
        amplitude against ``k_gain`` × the server's, up to the first k_gain
        step; ``kgain_step_settling_s``: from the first step (the server's
        `m` key) for the client-current amplitude to settle within 2 % of
        its new value, ``k_gain`` × factor × the server's, up to the next
        step (NaN without a step). Each amplitude is that of the period
        ending at the instant, so a figure includes up to one period of
        window delay.
    """
    t_end = sliding_fundamental(time_s, v_ref, f0_hz)[0]
    t_i, v_load, v_ref, i_server, i_client = time_s, v_load, v_ref, i_server, i_client
    if ts_s is not None:
        # The loops regulate samples: the voltage too (its switching ripple can bias the waveform's fundamental).
        t_i = at_ticks(time_s, v_load, ts_s)[0]
        v_load, v_ref, i_server, i_client = (at_ticks(time_s, y, ts_s)[1] for y in (v_load, v_ref, i_server, i_client))
    # Every signal on one grid of window ends (the samples' linear interpolation
    # scales every fundamental alike, by sinc²(ω0·ts/2): the ratios are the samples').
    c_v = np.interp(t_end, *sliding_fundamental(t_i, v_load, f0_hz))
    c_ref = np.interp(t_end, *sliding_fundamental(t_i, v_ref, f0_hz))
    c_s = np.interp(t_end, *sliding_fundamental(t_i, i_server, f0_hz))
    c_c = np.interp(t_end, *sliding_fundamental(t_i, i_client, f0_hz))
    steps = factor_steps(time_s, factor) if factor is not None else []
    first_step_s = steps[0][0] if steps else math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        voltage = np.abs(c_v) / np.abs(c_ref)
        client = np.abs(c_c) / (k_gain * np.abs(c_s))
    start_s = float(np.asarray(time_s, dtype=float)[0])
    out = {
        "startup_settling_s": settling_after(t_end, voltage, start_s, band=SETTLING_BAND),
        "client_startup_settling_s": settling_after(t_end, client, start_s, first_step_s),
        "kgain_step_settling_s": math.nan,
    }
    if steps:
        t1, new_factor = steps[0]
        until = steps[1][0] if len(steps) > 1 else math.inf
        out["kgain_step_settling_s"] = settling_after(t_end, client / new_factor, t1, until)
    return out
