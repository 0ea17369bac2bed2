"""Waveforms reduced for display: the minimum and maximum of every pixel column.

A figure ``columns`` pixels wide cannot show more than one vertical stroke per
column, so keeping each column's extremes (in time order) draws the same
picture as the full run, PWM ripple envelope and overshoot peaks included, from
at most ``2 * columns`` points. Full-resolution data stays in the Parquet runs.
"""

from __future__ import annotations

import numpy as np


def minmax_decimate(t: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep, for each of ``columns`` equal time bins, its minimum and maximum sample.

    Parameters
    ----------
    t, y : array
        Sample times (increasing) and values, same length.
    columns : int
        Pixel columns of the plot (at least 1).

    Returns
    -------
    (t, y)
        At most ``2 * columns`` samples, in time order; the input unchanged when it
        is already that short. Non-finite values are dropped first.
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if columns < 1:
        raise ValueError("columns must be at least 1")
    if len(t) <= 2 * columns:
        return t, y
    edges = np.linspace(t[0], t[-1], columns + 1)
    bins = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, columns - 1)
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    ends = np.r_[starts[1:], len(y)]
    picked = []
    for s, e in zip(starts, ends):
        seg = y[s:e]
        picked.extend(sorted({s + int(np.argmin(seg)), s + int(np.argmax(seg))}))
    idx = np.asarray(picked, dtype=int)
    return t[idx], y[idx]
