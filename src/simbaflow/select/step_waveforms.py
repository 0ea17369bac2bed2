"""Metrics of simulated waveforms, per reference step.

A transient job's response (inductor current, estimated power) is measured
against its recorded reference. Steps are where the reference jumps; each
segment between steps gets step metrics (on the response averaged over one
switching period, so the PWM ripple does not hide the settling) plus its
steady-state error and ripple (on the raw response, over the segment's last
fifth). The run's figures are the worst over the segments after the first
(start-up from rest is a different transient); a last segment shorter than
half the others (cut by the end of the run) is left out.
"""

from __future__ import annotations

import math

import numpy as np

from simbaflow.design.metrics import iae, itae, step_metrics

#: Columns a run's metrics dict always has.
RUN_METRICS = ("overshoot_pct", "rise_time_s", "settling_time_s", "peak", "steady_state_error", "ripple_pp",
               "iae", "itae", "duty_saturation_s", "tracking_error_pct", "n_steps")
#: Step figures the closed-loop analysis predicts too (``analytic_<name>`` in metrics.csv).
PREDICTED = ("overshoot_pct", "rise_time_s", "settling_time_s")


def uniform(time_s: np.ndarray, y: np.ndarray, step_s: float, hold: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``y`` resampled on a uniform grid.

    Event-point outputs repeat an instant at a discontinuity (value before, then
    after); the last value at each instant is kept. ``hold`` keeps each value
    until the next point (for piecewise-constant references) instead of
    interpolating linearly.
    """
    t = np.asarray(time_s, dtype=float)
    keep = np.concatenate([np.diff(t) > 0, [True]])
    t, y = t[keep], np.asarray(y, dtype=float)[keep]
    grid = np.arange(t[0], t[-1], step_s)
    if hold:
        return grid, y[np.searchsorted(t, grid, side="right") - 1]
    return grid, np.interp(grid, t, y)


def period_average(y: np.ndarray, samples: int) -> np.ndarray:
    """Causal moving average over ``samples`` points (one switching period)."""
    if samples <= 1:
        return y
    c = np.cumsum(np.concatenate([[0.0], y]))
    out = np.empty_like(y)
    n = np.arange(1, y.size + 1)
    lo = np.maximum(0, n - samples)
    out[:] = (c[n] - c[lo]) / (n - lo)
    return out


def reference_steps(time_s: np.ndarray, reference: np.ndarray, min_jump_fraction: float = 0.02,
                    merge_s: float = 1e-4) -> list[int]:
    """Indices where the reference jumps (ramps shorter than ``merge_s`` count as one step)."""
    span = float(np.ptp(reference)) or 1.0
    jumps = np.nonzero(np.abs(np.diff(reference)) > min_jump_fraction * span)[0] + 1
    steps: list[int] = []
    for i in jumps:
        if steps and time_s[i] - time_s[steps[-1]] < merge_s:
            continue
        steps.append(int(i))
    return steps


def run_metrics(time_s: np.ndarray, response: np.ndarray, reference: np.ndarray, period_s: float,
                duty: np.ndarray | None = None, duty_limits: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Metrics of one run (see the module docstring).

    Parameters
    ----------
    time_s, response, reference : numpy.ndarray
        The run's time vector, response signal and reference signal.
    period_s : float
        Switching (or control) period over which the response is averaged.
    duty : numpy.ndarray, optional
        Duty-cycle signal, for the time spent at its limits.

    Returns
    -------
    dict
        :data:`RUN_METRICS` plus ``segments``: per-segment metrics.
    """
    step_s = period_s / 32
    t, y = uniform(time_s, response, step_s)
    _, r = uniform(time_s, reference, step_s, hold=True)
    y_avg = period_average(y, 32)
    starts = [0] + [i for i in reference_steps(t, r) if i > 0]
    bounds = starts + [t.size]
    segments = []
    for k in range(len(starts)):
        a, b = bounds[k], bounds[k + 1]
        if b - a < 64:
            continue
        target = float(np.median(r[a + (b - a) // 2 : b]))
        before = float(r[a - 1]) if a > 0 else 0.0
        if k > 0:
            # Measure from what the response actually was at the step.
            before = float(y_avg[a - 1])
        m = step_metrics(t[a:b], y_avg[a:b], y_initial=before, y_final=target, t_step_s=t[a])
        tail = slice(a + 4 * (b - a) // 5, b)
        err = float(np.mean(y[tail]) - target)
        segments.append({
            "t_start_s": float(t[a]), "duration_s": float(t[b - 1] - t[a]), "target": target, **m,
            "steady_state_error": err,
            "tracking_error_pct": abs(err) / abs(target) * 100 if target else math.nan,
            "ripple_pp": float(np.ptp(y[tail])),
        })
    # A last segment cut short by the end of the run cannot be judged on settling.
    if len(segments) > 2:
        longest = max(t_seg["duration_s"] for t_seg in segments[:-1])
        if segments[-1]["duration_s"] < 0.5 * longest:
            segments = segments[:-1]
    later = segments[1:] or segments
    out = {
        "overshoot_pct": _worst(later, "overshoot_pct"),
        "rise_time_s": _worst(later, "rise_time_s"),
        "settling_time_s": _worst(later, "settling_time_s"),
        "peak": float(np.max(np.abs(y_avg))) if y_avg.size else math.nan,
        "steady_state_error": _worst(later, "steady_state_error"),
        "ripple_pp": _worst(later, "ripple_pp"),
        "tracking_error_pct": _worst(later, "tracking_error_pct"),
        "iae": iae(t, r - y),
        "itae": itae(t, r - y),
        "duty_saturation_s": math.nan,
        "n_steps": len(segments),
        "segments": segments,
    }
    if duty is not None:
        td, d = uniform(time_s, duty, step_s)
        at_limit = (d <= duty_limits[0] + 1e-9) | (d >= duty_limits[1] - 1e-9)
        out["duty_saturation_s"] = float(np.count_nonzero(at_limit) * step_s)
    return out


def _worst(segments: list[dict], name: str) -> float:
    """The worst value of ``name`` over ``segments`` (largest magnitude for the error).

    A segment that never settles (NaN time) makes the run unsettled: NaN.
    """
    values = [s[name] for s in segments]
    if any(v is None or math.isnan(v) for v in values):
        return math.nan
    if not values:
        return math.nan
    return float(max(values, key=abs)) if name == "steady_state_error" else float(max(values))
