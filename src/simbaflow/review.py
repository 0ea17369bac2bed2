"""Review artefacts: the figures and the selection summary the HTML report embeds."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from simbaflow import atomic, figures
from simbaflow.study import load_candidate_json

_SUMMARY_FIELDS = ["kp", "ki", "xi", "wn_rad_s", "method", "realisation", "fs_hz", "delay_samples", "a0", "a1",
                   "a0_fixed", "a1_fixed", "q_format", "overshoot_pct", "rise_time_s", "settling_time_s",
                   "phase_margin_deg", "gain_margin_db", "stable", "stable_fixed", "ct_overshoot_pct"]


def analytic_figures(candidate_jsons: list[str], table_csv: str, selection_json: str, outputs: list[str]) -> None:
    """Write the four analytic figures, in the order of the workflow's ``FIGURE_NAMES``."""
    rows = [load_candidate_json(p) for p in candidate_jsons]
    df = pd.read_csv(table_csv)
    chosen = json.loads(Path(selection_json).read_text())["candidate"]
    step_path, pz_path, metrics_path, cvd_path = outputs
    figures.step_responses_by_gain(rows, step_path)
    figures.pole_zero_maps(rows, pz_path)
    figures.metrics_vs_parameters(df, metrics_path)
    figures.continuous_vs_discrete(rows, chosen["kp"], chosen["ki"], cvd_path)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def selection_html(selection_json: str, out_html: str) -> None:
    """A self-contained page: winner, reason, constraints, runners-up, rejections, provenance."""
    sel = json.loads(Path(selection_json).read_text())
    cand = sel["candidate"]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(cand.get(k))}</td></tr>" for k in _SUMMARY_FIELDS)
    cons = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(json.dumps(v))}</li>" for k, v in sel["constraints"].items()
    )
    runners = "".join(
        f"<tr><td>{html.escape(r['candidate_id'])}</td>"
        + "".join(f"<td>{_cell(r.get(k))}</td>" for k in ("overshoot_pct", "settling_time_s", "phase_margin_deg"))
        + "</tr>"
        for r in sel["runners_up"]
    )
    rejected = "".join(
        f"<tr><td>{html.escape(r['candidate_id'])}</td><td>{html.escape('; '.join(r['broken']))}</td></tr>"
        for r in sel["rejected"]
    )
    prov = "".join(f"<li>{html.escape(k)}: <code>{html.escape(str(v))}</code></li>" for k, v in sel["provenance"].items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Selection: {html.escape(sel['study'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:1em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left}}</style></head><body>
<h1>Selected candidate <code>{html.escape(sel['candidate_id'])}</code></h1>
<p>{html.escape(sel['reason'])}.</p>
<h2>Constraints ({html.escape(json.dumps(sel['objective']))})</h2><ul>{cons}</ul>
<h2>Chosen gains and metrics</h2><table>{rows}</table>
<h2>Runners-up</h2><table><tr><th>candidate</th><th>overshoot %</th><th>settling s</th><th>phase margin °</th></tr>{runners}</table>
<h2>Rejected candidates ({len(sel['rejected'])})</h2><table><tr><th>candidate</th><th>broken constraints</th></tr>{rejected}</table>
<h2>Provenance</h2><ul><li>spec: <code>{html.escape(sel['spec_path'])}</code></li>{prov}</ul>
</body></html>
"""
    atomic.write_text(out_html, page)
