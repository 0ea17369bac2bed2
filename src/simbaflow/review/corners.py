"""Figures of the robust selection: the Pareto front of two worst-case metrics, step envelopes over the corners."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from simbaflow.review.figures import _save, plt


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both ``x`` and ``y`` (both minimised), by ``x``."""
    order = np.lexsort((y, x))
    front, best_y = [], math.inf
    for i in order:
        if y[i] < best_y:
            front.append(i)
            best_y = y[i]
    return np.asarray(front, dtype=int)


def pareto_figure(table_csv: str | Path, selection_json: str | Path, out_png: str | Path,
                  metrics: tuple[str, str]) -> None:
    """Every candidate on two (worst-case) metrics, the Pareto front joined, the pick marked.

    ``metrics`` is the kind's default pair; the selection's ``pareto`` (the spec's
    ``selection.pareto``) replaces it. Candidates whose metric is not finite on
    some corner (unstable, never settling) cannot be drawn; the title says how
    many were left out.
    """
    df = pd.read_csv(table_csv)
    sel = json.loads(Path(selection_json).read_text())
    mx, my = sel.get("pareto") or metrics
    x, y = pd.to_numeric(df[mx], errors="coerce"), pd.to_numeric(df[my], errors="coerce")
    finite = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    feasible = ~df.candidate_id.isin([r["candidate_id"] for r in sel.get("rejected", [])])
    ax.scatter(x[finite & ~feasible], y[finite & ~feasible], s=14, c="0.6", label="breaks a constraint")
    ax.scatter(x[finite & feasible], y[finite & feasible], s=22, c="tab:blue", label="meets every constraint")
    xs, ys = x[finite].to_numpy(), y[finite].to_numpy()
    if xs.size:
        front = pareto_front(xs, ys)
        ax.plot(xs[front], ys[front], "-", c="tab:orange", lw=1.2, label="Pareto front")
    pick = df[df.candidate_id == sel["candidate_id"]]
    if not pick.empty:
        ax.scatter(pick[mx], pick[my], s=160, facecolors="none", edgecolors="tab:red", lw=2,
                   label=f"selected: {sel['candidate_id']}")
    nominal = (sel.get("nominal_best") or {}).get("candidate_id")
    if nominal and nominal != sel["candidate_id"]:
        nb = df[df.candidate_id == nominal]
        ax.scatter(nb[mx], nb[my], s=90, marker="x", c="k", label=f"nominal-plant choice: {nominal}")
    left_out = int((~finite).sum())
    ax.set_xlabel(mx)
    ax.set_ylabel(my)
    ax.set_title(f"{mx} vs {my} over the plant corners"
                 + (f" ({left_out} candidates not finite on some corner, not drawn)" if left_out else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out_png)


def envelope_figure(rows: list[dict], selection_json: str | Path, out_png: str | Path) -> None:
    """Per candidate, the nominal discrete step response and its envelope (min/max) over the corners."""
    sel = json.loads(Path(selection_json).read_text())
    rows = [r for r in rows if r.get("corner_responses")]
    n = max(1, len(rows))
    cols = 8 if n > 16 else 4
    nrows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(2.2 * cols, 1.6 * nrows), sharey=True, squeeze=False)
    for ax in axes.ravel()[len(rows):]:
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        responses = row["corner_responses"]
        length = min(len(t) for t, _ in responses.values())
        t = np.asarray(next(iter(responses.values()))[0][:length], dtype=float) * 1e3
        ys = np.array([np.asarray(y[:length], dtype=float) for _, y in responses.values()])
        ax.fill_between(t, ys.min(axis=0), ys.max(axis=0), color="tab:blue", alpha=0.25, lw=0)
        if "c0" in responses:
            ax.plot(t, np.asarray(responses["c0"][1][:length], dtype=float), c="tab:blue", lw=0.9)
        ax.axhline(1.1, c="tab:red", lw=0.5, ls=":")
        chosen = row["candidate_id"] == sel["candidate_id"]
        ax.set_title(row["candidate_id"], fontsize=5.5, color="tab:red" if chosen else "k",
                     fontweight="bold" if chosen else "normal")
        ax.tick_params(labelsize=5)
        ax.set_xlim(0, min(t[-1], 6.0))
        ax.set_ylim(0, 1.6)
    fig.suptitle("Discrete step response on the nominal plant (line) and its envelope over the plant corners "
                 "(band); dotted: 10 % overshoot; time in ms", fontsize=8)
    fig.tight_layout()
    _save(fig, out_png)
