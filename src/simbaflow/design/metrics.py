"""Step-response metrics of a waveform, analytic or simulated.

The same function measures python-control step responses and transient-job
waveforms, so analytic predictions and simulated values are comparable.
"""

from __future__ import annotations

import math

import numpy as np


def step_metrics(
    time_s: np.ndarray,
    y: np.ndarray,
    y_initial: float | None = None,
    y_final: float | None = None,
    settling_band: float = 0.02,
    t_step_s: float | None = None,
) -> dict[str, float]:
    """Overshoot, 10–90 % rise time, settling time and peak of one step.

    Parameters
    ----------
    time_s, y : numpy.ndarray
        The response (same length, ``time_s`` increasing).
    y_initial : float, optional
        Value before the step (default: ``y[0]``).
    y_final : float, optional
        Target value (default: the mean of the last 5 % of ``y``).
    settling_band : float
        Settling band as a fraction of the step size (0.02 for 2 %).
    t_step_s : float, optional
        Instant of the step (default: ``time_s[0]``); times are measured from it.

    Returns
    -------
    dict
        ``overshoot_pct`` (≥ 0, % of the step size), ``rise_time_s``,
        ``settling_time_s`` (last exit from the band), ``peak`` (extreme value in
        the step's direction), ``peak_time_s``, ``final_value``. Times are NaN
        when the response never gets there.
    """
    time_s = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    if time_s.shape != y.shape or time_s.size < 2:
        raise ValueError("time_s and y must be 1-D arrays of the same length (≥ 2)")
    t0 = time_s[0] if t_step_s is None else t_step_s
    y0 = y[0] if y_initial is None else y_initial
    if y_final is None:
        tail = max(1, int(0.05 * y.size))
        y_final = float(np.mean(y[-tail:]))
    step = y_final - y0
    nan = float("nan")
    if step == 0 or not np.isfinite(step):
        return {"overshoot_pct": nan, "rise_time_s": nan, "settling_time_s": nan,
                "peak": float(y_final), "peak_time_s": nan, "final_value": float(y_final)}
    # Normalise so the step goes from 0 to 1 whatever its sign.
    yn = (y - y0) / step
    i_peak = int(np.argmax(yn))
    overshoot_pct = max(0.0, (yn[i_peak] - 1.0) * 100.0)
    rise_time_s = _crossing_time(time_s, yn, 0.9) - _crossing_time(time_s, yn, 0.1)
    outside = np.nonzero(np.abs(yn - 1.0) > settling_band)[0]
    if outside.size == 0:
        settling_time_s = 0.0
    elif outside[-1] == yn.size - 1:
        settling_time_s = nan
    else:
        settling_time_s = float(time_s[outside[-1] + 1] - t0)
    return {
        "overshoot_pct": float(overshoot_pct),
        "rise_time_s": float(rise_time_s),
        "settling_time_s": settling_time_s,
        "peak": float(y0 + yn[i_peak] * step),
        "peak_time_s": float(time_s[i_peak] - t0),
        "final_value": float(y_final),
    }


def _crossing_time(time_s: np.ndarray, yn: np.ndarray, level: float) -> float:
    """First instant the normalised response reaches ``level``, linearly interpolated."""
    above = np.nonzero(yn >= level)[0]
    if above.size == 0:
        return math.nan
    i = int(above[0])
    if i == 0:
        return float(time_s[0])
    y_a, y_b = yn[i - 1], yn[i]
    frac = (level - y_a) / (y_b - y_a) if y_b != y_a else 0.0
    return float(time_s[i - 1] + frac * (time_s[i] - time_s[i - 1]))


def iae(time_s: np.ndarray, error: np.ndarray) -> float:
    """Integral of the absolute error (trapezoidal), error-units · s."""
    return float(np.trapezoid(np.abs(error), time_s))


def itae(time_s: np.ndarray, error: np.ndarray) -> float:
    """Integral of time-weighted absolute error, time measured from ``time_s[0]``."""
    return float(np.trapezoid((time_s - time_s[0]) * np.abs(error), time_s))
