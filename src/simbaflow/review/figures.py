"""Figures of the analytic sweep (PNG, matplotlib): what a reviewer looks at."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simbaflow.core import atomic  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _gain_label(row: dict) -> str:
    return f"ξ = {row['xi']:.3g}, ωn = {row['wn_rad_s']:.4g} rad/s (Kp = {row['kp']:.4g}, Ki = {row['ki']:.4g})"


def step_responses_by_gain(rows: list[dict], path: str | Path) -> None:
    """The seed's plot: continuous closed-loop step responses overlaid, one per (ξ, ωn)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    seen = set()
    for row in rows:
        key = (row["kp"], row["ki"])
        if key in seen or "continuous" not in row["responses"]:
            continue
        seen.add(key)
        t, y = row["responses"]["continuous"]
        ax.plot(np.asarray(t) * 1e3, y, label=_gain_label(row))
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="time (ms)", ylabel="output (p.u.)", title="Continuous closed-loop step response per gain set")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def pole_zero_maps(rows: list[dict], path: str | Path) -> None:
    """Continuous closed-loop poles (x) and zeros (o) per gain set, and discrete poles in the z-plane."""
    fig, (ax_s, ax_z) = plt.subplots(1, 2, figsize=(12, 5.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of: dict[tuple, str] = {}
    for row in rows:
        key = (row["kp"], row["ki"])
        if key in colour_of:
            continue
        c = colour_of[key] = colours[len(colour_of) % len(colours)]
        poles = _parse_roots(row["ct_poles"])
        zeros = _parse_roots(row["ct_zeros"])
        ax_s.scatter(poles.real, poles.imag, marker="x", s=40, color=c,
                     label=f"ξ = {row['xi']:.3g}, ωn = {row['wn_rad_s']:.4g} rad/s")
        ax_s.scatter(zeros.real, zeros.imag, marker="o", s=40, facecolors="none", edgecolors=c)
    for row in rows:
        if row["delay_samples"] == 0 and row["method"] == rows[0]["method"]:
            p = _parse_roots(row["poles"])
            ax_z.scatter(p.real, p.imag, marker="x", s=40, color=colour_of[(row["kp"], row["ki"])])
    theta = np.linspace(0, 2 * np.pi, 400)
    ax_z.plot(np.cos(theta), np.sin(theta), color="grey", lw=0.8, label="unit circle")
    ax_s.set(xlabel="Re(s) (rad/s)", ylabel="Im(s) (rad/s)", title="Continuous closed loop: poles ×, zeros ○")
    ax_z.set(xlabel="Re(z)", ylabel="Im(z)",
             title=f"Discrete closed-loop poles ({rows[0]['method']}, no delay; colours as left)")
    ax_z.set_aspect("equal")
    for ax in (ax_s, ax_z):
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=9)
    ax_s.legend(fontsize=8, loc="best", framealpha=0.9)
    ax_z.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    _save(fig, path)


def _parse_roots(text) -> np.ndarray:
    if not isinstance(text, str) or not text.strip():
        return np.array([], dtype=complex)
    return np.array([complex(tok) for tok in text.split()])


#: Axis labels (with units) of the swept parameters; others are shown by name.
PARAMETER_LABELS = {"xi": "ξ", "wn_rad_s": "ωn (rad/s)", "kp": "Kp (1/A)", "ki": "Ki (1/(A·s))", "fs_hz": "fs (Hz)",
                    "delay_samples": "delay (samples)", "server_kr": "server Kr (1/s)", "client_kr": "client Kr (1/s)",
                    "server_phi_prime_rad": "server φ′ (rad)", "client_phi_prime_rad": "client φ′ (rad)"}

DC_PARAMETERS = ("xi", "wn_rad_s", "kp", "ki", "fs_hz", "method", "delay_samples", "realisation")
DC_METRICS = (("overshoot_pct", "overshoot (%)"), ("settling_time_s", "2 % settling (s)"),
              ("phase_margin_deg", "phase margin (°)"))


def metrics_vs_parameters(df: pd.DataFrame, path: str | Path, parameters=DC_PARAMETERS, metrics=DC_METRICS) -> None:
    """Metrics (``(column, label)`` pairs) against every swept parameter that takes several values."""
    params = [p for p in parameters if p in df and df[p].nunique() > 1]
    ncols = max(1, len(params))
    fig, axes = plt.subplots(len(metrics), ncols, figsize=(3.4 * ncols, 2.6 * len(metrics)), squeeze=False)
    for j, p in enumerate(params):
        categorical = not pd.api.types.is_numeric_dtype(df[p])
        for i, (m, label) in enumerate(metrics):
            ax = axes[i][j]
            x = df[p].astype(str) if categorical else df[p]
            ok = df["stable"].astype(bool)
            ax.scatter(x[ok], df[m][ok], s=14, label="stable")
            ax.scatter(x[~ok], np.zeros((~ok).sum()), s=14, marker="v", color="red", label="unstable")
            ax.set_xlabel(PARAMETER_LABELS.get(p, p), fontsize=10)
            ax.set_ylabel(label, fontsize=10)
            ax.grid(alpha=0.3)
            if categorical:
                ax.tick_params(axis="x", rotation=30, labelsize=8)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.suptitle("Closed-loop metrics against each swept parameter")
    fig.tight_layout()
    _save(fig, path)


def continuous_vs_discrete(rows: list[dict], kp: float, ki: float, path: str | Path) -> None:
    """For one gain set: the continuous step response against each discretisation (and fixed point)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    sel = [r for r in rows if np.isclose(r["kp"], kp) and np.isclose(r["ki"], ki)]
    if sel:
        t, y = sel[0]["responses"]["continuous"]
        ax.plot(np.asarray(t) * 1e3, y, color="black", lw=2, label="continuous")
    for r in sel:
        label = f"{r['method']}, delay {r['delay_samples']}" + (" (Pid)" if r["realisation"] != "pi_recurrence" else "")
        if "discrete" in r["responses"]:
            t, y = r["responses"]["discrete"]
            ax.step(np.asarray(t) * 1e3, y, where="post", lw=1, label=label)
        if "fixed" in r["responses"] and r is sel[0]:
            t, y = r["responses"]["fixed"]
            ax.step(np.asarray(t) * 1e3, y, where="post", lw=1, ls=":", label=label + f", {r['q_format']}")
    ax.axhline(1.0, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="time (ms)", ylabel="output (p.u.)",
           title=f"Continuous versus discretised loops, Kp = {kp:.4g}, Ki = {ki:.4g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    _save(fig, path)
