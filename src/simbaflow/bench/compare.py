"""Measured versus simulated: align a bench record with a run, then measure both alike.

Conventions
-----------
``offset_s`` is how late the record is on the simulation: the record at time
``t`` shows what the simulation shows at ``t - offset_s``.

Both signals are compared on the record's own samples, inside the time span
the simulation covers: the run is interpolated at the record's sample times,
and overshoot and settling are computed the same way on both after the same
short moving average (so one noisy sample cannot set them).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, signal

from simbaflow.core.errors import SimbaflowError

SMOOTH_SAMPLES = 5
SETTLING_BAND = 0.02
FINAL_FRACTION = 0.1


class CompareError(SimbaflowError):
    """A record and a run cannot be compared as asked."""


def _uniform_period_s(time_s: np.ndarray) -> float:
    return float(np.median(np.diff(time_s)))


def _fill_nan(y: np.ndarray) -> np.ndarray:
    """Interpolate over NaN samples (values the dump lost)."""
    good = np.isfinite(y)
    if good.all():
        return y
    idx = np.arange(y.size)
    return np.interp(idx, idx[good], y[good])


def _smooth(y: np.ndarray, n: int = SMOOTH_SAMPLES) -> np.ndarray:
    """Centred moving average; the edges average over what exists."""
    if y.size < n:
        return y.copy()
    kernel = np.ones(n)
    return np.convolve(y, kernel, mode="same") / np.convolve(np.ones(y.size), kernel, mode="same")


def xcorr_offset_s(
    time_rec_s: np.ndarray, y_rec: np.ndarray, time_sim_s: np.ndarray, y_sim: np.ndarray
) -> float:
    """Offset that best lays the run over the record, by cross-correlation.

    The run is resampled at the record's period and held at its first and last
    values outside its span (a step response rests at its initial value before
    the step). Every lag where run and record overlap by at least half the
    shorter one is scored by the squared error over the whole record, computed
    from the cross-correlation (FFT); the best integer lag is refined to a
    fraction of a sample by a parabola through its neighbours. Scoring the whole
    record, not the overlap alone, keeps two flat tails from matching as well
    as the transient does.

    Parameters
    ----------
    time_rec_s, y_rec : array_like
        Record time (uniformly sampled) and values; NaN values are bridged.
    time_sim_s, y_sim : array_like
        Run time (any increasing grid) and values.

    Returns
    -------
    float
        ``offset_s`` (see the module docstring).
    """
    t_rec = np.asarray(time_rec_s, dtype=float)
    r = _fill_nan(np.asarray(y_rec, dtype=float))
    ts_s = _uniform_period_s(t_rec)
    t_sim = np.asarray(time_sim_s, dtype=float)
    n_sim = int(math.floor((t_sim[-1] - t_sim[0]) / ts_s)) + 1
    s = np.interp(t_sim[0] + ts_s * np.arange(n_sim), t_sim, np.asarray(y_sim, dtype=float))
    n_r = r.size
    s_pad = np.concatenate((np.full(n_r, s[0]), s, np.full(n_r, s[-1])))
    # Window p0 of s_pad lies under the record at lag m = n_r - p0 (r[n] meets s[n - m]).
    cross = signal.correlate(s_pad, r, mode="valid")
    c2 = np.concatenate(([0.0], np.cumsum(s_pad**2)))
    p0 = np.arange(cross.size)
    sse = np.sum(r**2) - 2 * cross + (c2[p0 + n_r] - c2[p0])
    lags = n_r - p0
    overlap = np.minimum(n_r, n_sim + lags) - np.maximum(0, lags)
    sse[overlap < max(4, min(n_r, n_sim) // 2)] = np.inf
    best = int(np.argmin(sse))
    if not np.isfinite(sse[best]):
        raise CompareError("record and run never overlap enough to be correlated")
    frac = 0.0
    if 0 < best < sse.size - 1 and np.isfinite(sse[best - 1]) and np.isfinite(sse[best + 1]):
        a, b, c = sse[best - 1], sse[best], sse[best + 1]
        curvature = a - 2 * b + c
        if curvature > 0:
            # Lags run opposite to p0, hence the sign.
            frac = -float(np.clip(0.5 * (a - c) / curvature, -0.5, 0.5))
    return float(t_rec[0] - t_sim[0] + (lags[best] + frac) * ts_s)


def crossing_time_s(time_s: np.ndarray, y: np.ndarray) -> float:
    """First time a step crosses halfway from its initial to its final value.

    The initial value is the first sample and the final value the median of the
    last 10 %, after a short moving average; the crossing is interpolated.

    Raises
    ------
    CompareError
        The signal has no step (it never crosses the halfway level).
    """
    t = np.asarray(time_s, dtype=float)
    y = _smooth(_fill_nan(np.asarray(y, dtype=float)))
    tail = max(3, int(y.size * FINAL_FRACTION))
    initial, final = y[0], np.median(y[-tail:])
    level = 0.5 * (initial + final)
    side = np.sign(y - level) * np.sign(final - initial)
    above = np.flatnonzero(side > 0)
    if final == initial or above.size == 0 or above[0] == 0:
        raise CompareError("no step to trigger on (the signal never crosses halfway)")
    k = int(above[0])
    frac = (level - y[k - 1]) / (y[k] - y[k - 1])
    return float(t[k - 1] + frac * (t[k] - t[k - 1]))


def step_metrics(time_s: np.ndarray, y: np.ndarray, initial: float) -> dict:
    """Overshoot and 2 % settling of a step that starts at ``time_s[0]``.

    Parameters
    ----------
    time_s, y : array_like
        The step response from the step instant on.
    initial : float
        Value before the step.

    Returns
    -------
    dict
        ``initial``, ``final`` (mean of the last 10 %), ``overshoot_pct`` and
        ``settling_time_s`` (from ``time_s[0]``); the last two are None when
        the signal has no step or has not settled by the last 10 %.
    """
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    tail = max(1, int(y.size * FINAL_FRACTION))
    final = float(np.mean(y[-tail:]))
    span = final - initial
    out = {"initial": float(initial), "final": final, "overshoot_pct": None, "settling_time_s": None}
    if not np.isfinite(span) or abs(span) <= 1e-9 * max(1.0, abs(final)):
        return out
    outside = np.flatnonzero(np.abs(y - final) > SETTLING_BAND * abs(span))
    if outside.size and outside[-1] >= y.size - tail:
        return out  # still moving at the end: an AC signal or too short a window
    out["overshoot_pct"] = float(max(0.0, np.max(np.sign(span) * (y - final))) / abs(span) * 100)
    out["settling_time_s"] = float(t[outside[-1] + 1] - t[0]) if outside.size else 0.0
    return out


def fundamental_hz(time_s: np.ndarray, y: np.ndarray) -> float:
    """Frequency of the strongest sinusoid in ``y``.

    The largest FFT bin (Hann window) gives the frequency to one bin; a bounded
    search within that bin then maximises the amplitude of a least-squares
    sinusoid fit, which is exact for a noiseless sinusoid.
    """
    t = np.asarray(time_s, dtype=float)
    y = _fill_nan(np.asarray(y, dtype=float))
    bin_hz = 1.0 / (y.size * _uniform_period_s(t))
    spectrum = np.abs(np.fft.rfft((y - y.mean()) * np.hanning(y.size)))
    k = int(np.argmax(spectrum[1:])) + 1

    def fitted_power(f_hz: float) -> float:
        w = 2 * np.pi * f_hz * t
        basis = np.column_stack([np.cos(w), np.sin(w), np.ones(w.size)])
        (a, b, _), *_ = np.linalg.lstsq(basis, y, rcond=None)
        return -(a * a + b * b)

    best = optimize.minimize_scalar(
        fitted_power, bounds=(max(k - 1, 0.5) * bin_hz, (k + 1) * bin_hz), method="bounded",
        options={"xatol": 1e-6 * bin_hz},
    )
    return float(best.x)


def phase_deg(time_s: np.ndarray, y: np.ndarray, f_hz: float) -> float:
    """Phase of ``y ≈ A cos(2π f t + φ) + c`` by least squares, degrees."""
    t = np.asarray(time_s, dtype=float)
    y = np.asarray(y, dtype=float)
    good = np.isfinite(y)
    w = 2 * np.pi * f_hz * t[good]
    basis = np.column_stack([np.cos(w), np.sin(w), np.ones(w.size)])
    (a, b, _), *_ = np.linalg.lstsq(basis, y[good], rcond=None)
    return float(np.degrees(np.arctan2(-b, a)))


def phase_error_deg(time_s: np.ndarray, a: np.ndarray, b: np.ndarray, f_hz: float | None = None) -> float:
    """Phase of ``b`` minus phase of ``a`` at their fundamental, wrapped to (-180, 180].

    Parameters
    ----------
    time_s : array_like
        Common, uniform sample times.
    a, b : array_like
        The two currents (e.g. server and client).
    f_hz : float, optional
        Fundamental frequency; estimated from ``a`` when omitted.
    """
    f = fundamental_hz(time_s, a) if f_hz is None else f_hz
    return _wrap_deg(phase_deg(time_s, b, f) - phase_deg(time_s, a, f))


def _wrap_deg(x: float) -> float:
    return float(-((-x + 180.0) % 360.0 - 180.0))


def compare(
    record: pd.DataFrame,
    run: pd.DataFrame,
    signal_map: dict[str, str],
    align: str = "xcorr",
    phase_pair: tuple[str, str] | None = None,
) -> dict:
    """Align a record with a run and measure both the same way.

    Parameters
    ----------
    record : DataFrame
        ``time_s`` and the record's channels.
    run : DataFrame
        ``time_s`` and the run's signals.
    signal_map : dict
        Record channel -> run signal. The first pair drives the alignment.
    align : {"xcorr", "trigger"}
        Cross-correlation, or matching the halfway crossings of the steps.
    phase_pair : (str, str), optional
        Two record channels (e.g. server and client current) whose phase
        difference is measured in both the record and the run.

    Returns
    -------
    dict
        ``align``, ``offset_s``, ``ts_s``, ``signals`` (per pair: ``rms_error``,
        ``mean_error``, ``max_abs_error``, ``n_samples`` and the ``measured``
        and ``simulated`` step metrics) and, with ``phase_pair``, ``phase``.
    """
    for rec_name, sim_name in signal_map.items():
        if rec_name not in record.columns:
            raise CompareError(f"the record has no channel {rec_name!r} (it has {_names(record)})")
        if sim_name not in run.columns:
            raise CompareError(f"the run has no signal {sim_name!r} (it has {_names(run)})")
    if not signal_map:
        raise CompareError("expected at least one record channel mapped to a run signal")
    t_rec = record["time_s"].to_numpy(dtype=float)
    t_sim = run["time_s"].to_numpy(dtype=float)
    if t_rec.size < 8 or t_sim.size < 2:
        raise CompareError("expected at least 8 record samples and 2 run samples to compare")
    first_rec, first_sim = next(iter(signal_map.items()))
    y_rec0 = record[first_rec].to_numpy(dtype=float)
    y_sim0 = run[first_sim].to_numpy(dtype=float)
    if align == "xcorr":
        offset_s = xcorr_offset_s(t_rec, y_rec0, t_sim, y_sim0)
    elif align == "trigger":
        offset_s = crossing_time_s(t_rec, y_rec0) - crossing_time_s(t_sim, y_sim0)
    else:
        raise CompareError(f"expected align 'xcorr' or 'trigger', got {align!r}")

    # Record samples the run covers once shifted; earlier ones are the baseline.
    t_shift = t_rec - offset_s
    inside = (t_shift >= t_sim[0]) & (t_shift <= t_sim[-1])
    before = t_shift < t_sim[0]
    if inside.sum() < 8:
        raise CompareError(
            f"after aligning (offset {offset_s:.6g} s) fewer than 8 record samples fall "
            "inside the run's time span"
        )
    t_win = t_rec[inside]
    pairs = []
    for rec_name, sim_name in signal_map.items():
        meas = record[rec_name].to_numpy(dtype=float)
        sim = np.interp(t_shift[inside], t_sim, run[sim_name].to_numpy(dtype=float))
        meas_win = meas[inside]
        good = np.isfinite(meas_win)
        if not good.any():
            raise CompareError(f"record channel {rec_name!r} has no finite sample where the run is")
        err = meas_win[good] - sim[good]
        baseline = meas[before & np.isfinite(meas)]
        smooth_meas = _smooth(_fill_nan(meas_win))
        initial_meas = float(np.mean(baseline)) if baseline.size >= 3 else float(smooth_meas[0])
        initial_sim = float(np.interp(t_sim[0], t_sim, run[sim_name].to_numpy(dtype=float)))
        pairs.append(
            {
                "record": rec_name,
                "simulated_signal": sim_name,
                "n_samples": int(good.sum()),
                "rms_error": float(np.sqrt(np.mean(err**2))),
                "mean_error": float(np.mean(err)),
                "max_abs_error": float(np.max(np.abs(err))),
                "measured": step_metrics(t_win, smooth_meas, initial_meas),
                "simulated": step_metrics(t_win, _smooth(sim), initial_sim),
            }
        )
    result = {
        "align": align,
        "offset_s": offset_s,
        "ts_s": _uniform_period_s(t_rec),
        "window_s": [float(t_win[0]), float(t_win[-1])],
        "signals": pairs,
    }
    if phase_pair is not None:
        result["phase"] = _phase(record, run, signal_map, phase_pair, t_shift, inside, t_sim)
    return result


def _phase(record, run, signal_map, phase_pair, t_shift, inside, t_sim) -> dict:
    a, b = phase_pair
    for name in (a, b):
        if name not in signal_map:
            raise CompareError(
                f"phase channel {name!r} is not mapped to a run signal (mapped: {sorted(signal_map)})"
            )
    t = t_shift[inside]
    meas_a = _fill_nan(record[a].to_numpy(dtype=float)[inside])
    meas_b = _fill_nan(record[b].to_numpy(dtype=float)[inside])
    sim_a = np.interp(t, t_sim, run[signal_map[a]].to_numpy(dtype=float))
    sim_b = np.interp(t, t_sim, run[signal_map[b]].to_numpy(dtype=float))
    f_hz = fundamental_hz(t, sim_a)
    measured = phase_error_deg(t, meas_a, meas_b, f_hz)
    simulated = phase_error_deg(t, sim_a, sim_b, f_hz)
    return {
        "channels": [a, b],
        "f_hz": f_hz,
        "measured_deg": measured,
        "simulated_deg": simulated,
        "error_deg": _wrap_deg(measured - simulated),
    }


def _names(frame: pd.DataFrame) -> str:
    return ", ".join(repr(c) for c in frame.columns if c != "time_s")
