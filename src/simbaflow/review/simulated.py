"""Review artefacts of the simulate stage: waveform pages, metric maps, candidate pages."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simbaflow.core import atomic  # noqa: E402
from simbaflow.review.decimate import minmax_decimate  # noqa: E402
from simbaflow.simulate.runio import read_run_parquet  # noqa: E402
from simbaflow.select.gather import analytic_model  # noqa: E402
from simbaflow.core.paths import results_dir  # noqa: E402
from simbaflow.core.tables import read_candidates  # noqa: E402

#: Metrics of the heatmap, per waveform style.
HEATMAP_METRICS = {
    "steps": ("overshoot_pct", "settling_time_s", "steady_state_error", "ripple_pp", "iae"),
    "client_server": ("phase_error_deg", "voltage_amplitude_error_pct", "voltage_thd_pct", "client_tracking_error_pct"),
}
#: (simulated column, analytic column, label) pairs of the agreement figure, per kind of study.
AGREEMENT = {
    "steps": [("overshoot_pct", "analytic_overshoot_pct", "overshoot (%)"),
           ("settling_time_s", "analytic_settling_time_s", "2 % settling (s)")],
    "client_server": [("phase_error_deg", "analytic_phase_error_deg", "client/server phase error (°)"),
           ("client_tracking_error_pct", "analytic_client_tracking_error_pct", "client tracking error (%)")],
}


def _client_server_designs(sim: dict) -> list[str]:
    return [d for d, c in sim["designs"].items() if c.get("kind") == "ac_client_server"]


def _read_metrics(metrics_csv) -> pd.DataFrame:
    df = pd.read_csv(metrics_csv, dtype={"message": str, "engine": str, "run_file": str, "corner": str})
    # The nominal plant's runs; the corner runs are drawn by simbaflow.review.corners.
    return df[df["corner"].fillna("c0") == "c0"].reset_index(drop=True) if "corner" in df else df


def _run(path: str):
    df, _ = read_run_parquet(path)
    return df


def simulated_figures(spec: dict, sim: dict, style: str, metrics_csv, selection_json, outputs) -> None:
    """``waveforms.html`` (static, decimated figures), the metric heatmap and the analytic-versus-simulated plot.

    ``style`` is the study kind's waveform page: ``steps`` (current and power
    designs against their reference steps) or ``client_server``.
    """
    waveforms, heatmap, agreement = outputs
    metrics = _read_metrics(metrics_csv)
    chosen = json.loads(Path(selection_json).read_text())["candidate_id"]
    if style == "client_server":
        _client_server_waveforms_html(spec, sim, metrics, chosen, waveforms)
    else:
        _step_waveforms_html(spec, sim, metrics, chosen, waveforms)
    _heatmap(metrics, heatmap, HEATMAP_METRICS[style])
    _agreement(metrics, agreement, AGREEMENT[style])


def _label(row: dict) -> str:
    return f"ξ = {row['xi']:.3g}, ωn = {row['wn_rad_s']:.4g} rad/s" if not math.isnan(row.get("xi", math.nan)) else row["candidate_id"]


def _page(title: str, panels: list[tuple[str, list[dict]]], out: str) -> None:
    """A static page of waveform figures (inline PNG, decimated per pixel column), each with its signals."""
    from simbaflow.review.decision import CSS, waveform_figure

    blocks = []
    for heading, group in panels:
        png = waveform_figure(group)
        if png is None:
            continue
        names = sorted({label for p in group for label, *_ in p["traces"]})
        blocks.append(f"<h2>{html.escape(heading)}</h2><img alt='{html.escape(heading)}' src='{png}'>"
                      f"<p><small>Traces: {html.escape('; '.join(names))}.</small></p>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}body{{max-width:1100px;margin:8px auto;padding:0 12px}}</style></head>"
            f"<body class='sf-review'><h1>{html.escape(title)}</h1><p><small>Decimated for display: the minimum "
            "and maximum of every pixel column are kept, so peaks and the ripple envelope are drawn as in the full "
            "run; full-resolution data in <code>runs/</code>.</small></p>" + "".join(blocks) + "</body></html>\n")
    atomic.write_text(out, page)


class _Runs:
    """Run files read once, their signals decimated to the figure's pixel columns."""

    def __init__(self):
        from simbaflow.review.decision import FIGURE_DPI, WAVEFORM_WIDTH_IN

        self.columns = int(WAVEFORM_WIDTH_IN * FIGURE_DPI)
        self.cache: dict[str, pd.DataFrame] = {}

    def trace(self, label: str, path: str, signal: str, role: str = "", scale: float = 1.0):
        from simbaflow.review.decimate import minmax_decimate

        df = self.cache.setdefault(path, _run(path))
        t, y = minmax_decimate(df["time_s"].to_numpy(), df[signal].to_numpy() * scale, self.columns)
        return (label, t, y, role)


_UNITS = {"current": "A", "power": "W"}


def _step_waveforms_html(spec, sim, metrics: pd.DataFrame, chosen: str, out: str) -> None:
    analytic = {r["candidate_id"]: r for r in read_candidates(results_dir(spec) / "candidates.csv")}
    designs = sim["designs"]
    continuous = [d for d, c in designs.items() if analytic_model(c) == "continuous"]
    power = [d for d, c in designs.items() if c.get("kind") == "power"]
    current = [d for d, c in designs.items() if c.get("kind", "current") == "current"]
    runs = _Runs()
    groups = []

    def ylabel(d):
        return f"{designs[d]['response']} ({_UNITS.get(designs[d].get('kind', 'current'), '')})"

    for d in continuous:
        ok = metrics[(metrics.design == d) & (metrics.status == "ok")].drop_duplicates("run_id")
        if not len(ok):
            continue
        traces = [runs.trace(f"reference: {designs[d]['reference']}", ok.run_file.iloc[0], designs[d]["reference"],
                             "reference")]
        traces += [runs.trace(_label(analytic[r.run_id]), r.run_file, designs[d]["response"],
                              "winner" if r.candidate_id == chosen else "") for r in ok.itertuples()]
        groups.append((f"{d}: {designs[d]['response']} for each gain set",
                       [{"title": f"{d}, every gain set", "ylabel": ylabel(d), "traces": traces}]))
    mine = metrics[(metrics.candidate_id == chosen) & (metrics.status == "ok")]
    traces = []
    for d in current:
        row = mine[mine.design == d]
        if len(row):
            if not traces:
                traces.append(runs.trace(f"reference: {designs[d]['reference']}", row.run_file.iloc[0],
                                         designs[d]["reference"], "reference"))
            traces.append(runs.trace(d, row.run_file.iloc[0], designs[d]["response"]))
    if traces:
        groups.append((f"selected {chosen}: " + " vs ".join(current),
                       [{"title": f"selected {chosen}", "ylabel": ylabel(current[0]), "traces": traces}]))
    for d in power:
        row = mine[mine.design == d]
        if len(row):
            groups.append((f"selected {chosen}, {d}: {designs[d]['reference']} vs {designs[d]['response']}", [{
                "title": f"selected {chosen}, {d}", "ylabel": ylabel(d),
                "traces": [runs.trace(f"reference: {designs[d]['reference']}", row.run_file.iloc[0],
                                      designs[d]["reference"], "reference"),
                           runs.trace(f"estimated: {designs[d]['response']}", row.run_file.iloc[0],
                                      designs[d]["response"], "winner")]}]))
    _page(f"Simulated waveforms ({spec['study']})", groups, out)


def _client_server_waveforms_html(spec, sim, metrics: pd.DataFrame, chosen: str, out: str) -> None:
    """Selected candidate: load voltage against its reference, server and client currents; then the
    client current of every simulated candidate."""
    design = _client_server_designs(sim)[0]
    cfg = sim["designs"][design]
    ok = metrics[(metrics.design == design) & (metrics.status == "ok")]
    mine = ok[ok.candidate_id == chosen]
    runs = _Runs()
    groups = []
    if len(mine):
        path = mine.run_file.iloc[0]
        groups.append((f"selected {chosen}: load voltage and reference", [{
            "title": f"selected {chosen}: load voltage", "ylabel": "voltage (V)",
            "traces": [runs.trace(f"v_ref ({cfg['v_ref']})", path, cfg["v_ref"], "reference"),
                       runs.trace(f"v_load ({cfg['v_load']})", path, cfg["v_load"], "winner")]}]))
        groups.append((f"selected {chosen}: server and client currents", [{
            "title": f"selected {chosen}: currents", "ylabel": "current (A)",
            "traces": [runs.trace(f"i_server ({cfg['i_server']})", path, cfg["i_server"]),
                       runs.trace(f"i_client ({cfg['i_client']})", path, cfg["i_client"], "winner")]}]))
    traces = [runs.trace(f"{r.candidate_id}: {r.phase_error_deg:.2f}°", r.run_file, cfg["i_client"],
                         "winner" if r.candidate_id == chosen else "") for r in ok.itertuples()]
    if traces:
        groups.append(("client current of every simulated candidate (legend: phase error against the server)", [{
            "title": f"client current ({cfg['i_client']}), every simulated candidate", "ylabel": "current (A)",
            "traces": traces}]))
    _page(f"Simulated waveforms ({spec['study']})", groups, out)


def _heatmap(metrics: pd.DataFrame, out: str, metric_names) -> None:
    metrics = metrics[metrics.status != "not simulated"]
    designs = list(dict.fromkeys(metrics.design))
    cols = [(d, m) for d in designs for m in metric_names]
    ids = list(dict.fromkeys(metrics.candidate_id))
    table = np.full((len(ids), len(cols)), np.nan)
    failed = np.zeros_like(table, dtype=bool)
    index = {(r.candidate_id, r.design): r for r in metrics.itertuples()}
    for i, cid in enumerate(ids):
        for j, (d, m) in enumerate(cols):
            r = index.get((cid, d))
            if r is not None:
                table[i, j] = getattr(r, m)
                failed[i, j] = r.status != "ok"
    norm = (table - np.nanmin(table, 0)) / np.where(np.nanmax(table, 0) > np.nanmin(table, 0),
                                                     np.nanmax(table, 0) - np.nanmin(table, 0), 1)
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 3, 0.22 * len(ids) + 2))
    ax.imshow(norm, aspect="auto", cmap="viridis_r")
    for i in range(len(ids)):
        for j in range(len(cols)):
            text = "failed" if failed[i, j] else (f"{table[i, j]:.3g}" if np.isfinite(table[i, j]) else "–")
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color="red" if failed[i, j] else "white")
    ax.set_xticks(range(len(cols)), [f"{d}\n{m}" for d, m in cols], rotation=90, fontsize=7)
    ax.set_yticks(range(len(ids)), ids, fontsize=6)
    ax.set_title("Simulated metrics (colour per column: better is lighter)")
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _agreement(metrics: pd.DataFrame, out: str, pairs) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ok = metrics[metrics.status == "ok"]
    for ax, (sim_col, ana_col, label) in zip(axes, pairs):
        for d, grp in ok.groupby("design"):
            ax.scatter(grp[ana_col], grp[sim_col], s=14, label=d)
        finite = pd.concat([ok[sim_col], ok[ana_col]]).replace([np.inf, -np.inf], np.nan).dropna()
        if len(finite):
            lo, hi = finite.min(), finite.max()
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set(xlabel=f"analytic {label}", ylabel=f"simulated {label}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Analytic prediction versus simulated transient")
    with atomic.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def svg_lines(series: list[tuple[str, np.ndarray, np.ndarray]], width: int = 720, height: int = 220,
              points: int = 480) -> str:
    """A small self-contained SVG line plot (no JavaScript), each series reduced to at most ``points``
    (minimum and maximum of every second pixel column, whole pixels)."""
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
    xs = np.concatenate([s[1] for s in series]) if series else np.array([0.0, 1.0])
    ys = np.concatenate([s[2] for s in series]) if series else np.array([0.0, 1.0])
    x0, x1 = float(np.nanmin(xs)), float(np.nanmax(xs)) or 1.0
    y0, y1 = float(np.nanmin(ys)), float(np.nanmax(ys))
    if y1 == y0:
        y1 = y0 + 1.0
    pad = 40

    def px(x, y):
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad), height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="10">',
             f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#999"/>',
             f'<text x="{pad}" y="{height - 8}">{x0 * 1e3:.3g} ms</text>',
             f'<text x="{width - pad - 40}" y="{height - 8}">{x1 * 1e3:.3g} ms</text>',
             f'<text x="2" y="{pad}">{y1:.4g}</text><text x="2" y="{height - pad}">{y0:.4g}</text>']
    for k, (name, t, y) in enumerate(series):
        t, y = minmax_decimate(t, y, points // 2)
        pts = " ".join(f"{a:.0f},{b:.0f}" for a, b in (px(a, b) for a, b in zip(t, y)))
        colour = colours[k % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{pts}"/>')
        parts.append(f'<text x="{pad + 5 + 150 * k}" y="{pad - 6}" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_PAGE_FIELDS = ["xi", "wn_rad_s", "kp", "ki", "method", "realisation", "delay_samples", "a0", "a1", "a0_fixed",
                "a1_fixed", "overshoot_pct", "settling_time_s", "phase_margin_deg", "stable", "status", "reason"]
_RUN_FIELDS = ["status", "message", "engine", "overshoot_pct", "analytic_overshoot_pct", "rise_time_s",
               "settling_time_s", "analytic_settling_time_s", "steady_state_error", "ripple_pp", "iae",
               "duty_saturation_s", "power_error_pct", "phase_error_deg", "analytic_phase_error_deg",
               "voltage_amplitude_error_pct", "voltage_thd_pct", "client_tracking_error_pct", "wall_time_s", "run_file"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.5g}"
    return html.escape(str(v))


def candidate_pages(spec: dict, sim: dict, candidates_csv, metrics_csv, selection_json, outputs) -> None:
    """One HTML page per candidate: analytic row, each run's metrics and waveforms."""
    metrics = _read_metrics(metrics_csv)
    sel = json.loads(Path(selection_json).read_text())
    verdict = {r["candidate_id"]: "rejected: " + "; ".join(r["broken"]) for r in sel["rejected"]}
    verdict[sel["candidate_id"]] = "selected: " + sel["reason"]
    rows = {r["candidate_id"]: r for r in read_candidates(candidates_csv)}
    by_path = {Path(p).stem: p for p in outputs}
    cache: dict[str, str] = {}
    for cid, out in by_path.items():
        row = rows[cid]
        runs = metrics[metrics.candidate_id == cid]
        sections = []
        for r in runs.to_dict(orient="records"):
            cfg = sim["designs"][r["design"]]
            table = "".join(f"<tr><th>{k}</th><td>{_fmt(r.get(k))}</td></tr>" for k in _RUN_FIELDS
                            if not (isinstance(r.get(k), float) and math.isnan(r.get(k))))
            if r["status"] == "ok":
                key = r["run_file"]
                if key not in cache:
                    df = _run(key)
                    t = df["time_s"].to_numpy()
                    groups = ([(cfg["v_ref"], cfg["v_load"]), (cfg["i_server"], cfg["i_client"])]
                              if cfg.get("kind") == "ac_client_server" else [(cfg["reference"], cfg["response"])])
                    cache[key] = "".join(svg_lines([(s, t, df[s].to_numpy()) for s in g]) for g in groups)
                plot = cache[key]
            else:
                plot = f"<p><b>run {html.escape(r['status'])}</b></p>"
            sections.append(f"<h2>{html.escape(r['design'])}</h2><table>{table}</table>{plot}")
        fields = _PAGE_FIELDS if "kp" in row else list(row)
        head = "".join(f"<tr><th>{k}</th><td>{_fmt(row.get(k))}</td></tr>" for k in fields)
        page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(cid)}</title>"
                "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto}table{border-collapse:collapse}"
                "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style></head><body>"
                f"<h1>Candidate <code>{html.escape(cid)}</code></h1><p>{html.escape(verdict.get(cid, ''))}</p>"
                f"<h2>Analytic design</h2><table>{head}</table>{''.join(sections)}</body></html>")
        atomic.write_text(out, page)
