"""Review artefacts: the figures and the selection summary the HTML report embeds."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from simbaflow.core import atomic

from simbaflow.review import figures
from simbaflow.review.decision import objective_of, ranking_table, rejected_summary
from simbaflow.core.tables import row_from_json

_SUMMARY_FIELDS_DC = ["kp", "ki", "xi", "wn_rad_s", "method", "realisation", "fs_hz", "delay_samples", "a0", "a1",
                   "a0_fixed", "a1_fixed", "q_format", "overshoot_pct", "rise_time_s", "settling_time_s",
                   "phase_margin_deg", "gain_margin_db", "stable", "stable_fixed", "ct_overshoot_pct"]


def analytic_figures(batch_jsons: list[str], table_csv: str, selection_json: str, outputs: list[str]) -> None:
    """Write the four analytic figures of a DC study, in the order of its kind's ``figures``."""
    rows = [row_from_json(r) for p in batch_jsons for r in json.loads(Path(p).read_text())]
    df = pd.read_csv(table_csv)
    chosen = json.loads(Path(selection_json).read_text())["candidate"]
    step_path, pz_path, metrics_path, cvd_path = outputs
    figures.step_responses_by_gain(rows, step_path)
    figures.pole_zero_maps(rows, pz_path)
    figures.metrics_vs_parameters(df, metrics_path)
    figures.continuous_vs_discrete(rows, chosen["kp"], chosen["ki"], cvd_path)


AC_PARAMETERS = ("server_kp", "server_kr", "server_phi_prime_rad", "client_kp", "client_kr", "client_phi_prime_rad",
                 "k_gain", "discretisation")
AC_METRICS = (("phase_error_deg", "phase error client/server (°)"), ("settling_time_s", "settling (s)"),
              ("server_phase_margin_deg", "server phase margin (°)"), ("client_phase_margin_deg", "client phase margin (°)"))


def ac_figures(table_csv: str, out_png: str) -> None:
    """The AC study's metrics against each swept parameter."""
    figures.metrics_vs_parameters(pd.read_csv(table_csv), out_png, AC_PARAMETERS, AC_METRICS)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def selection_html(selection_json: str, out_html: str) -> None:
    """A self-contained page: winner, reason, constraints, runners-up, rejections, provenance."""
    sel = json.loads(Path(selection_json).read_text())
    cand = sel["candidate"]
    fields = _SUMMARY_FIELDS_DC if "kp" in cand else [k for k in cand if not k.endswith(".run_file")]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_cell(cand.get(k))}</td></tr>" for k in fields)
    cons = "".join(
        f"<li><code>{html.escape(k)}</code>: {html.escape(json.dumps(v))}</li>" for k, v in sel["constraints"].items()
    )
    _, objective_metric, _ = objective_of(sel)  # the objective may carry a tie_rel beside its metric
    runner_columns = [objective_metric] + [k for k in ("overshoot_pct", "phase_error_deg", "phase_margin_deg")
                                           if k in cand and k != objective_metric]
    runners = "".join(
        f"<tr><td>{html.escape(r['candidate_id'])}</td>"
        + "".join(f"<td>{_cell(r.get(k))}</td>" for k in runner_columns)
        + "</tr>"
        for r in sel["runners_up"]
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
<h2>Ranking of the feasible candidates</h2>{ranking_table(sel, limit=len(sel['ranking']))}
<h2>Runners-up</h2><table><tr><th>candidate</th>{"".join(f"<th>{html.escape(c)}</th>" for c in runner_columns)}</tr>{runners}</table>
<h2>Rejected candidates ({len(sel['rejected'])})</h2>{rejected_summary(sel)}
<h2>Provenance</h2><ul><li>spec: <code>{html.escape(sel['spec_path'])}</code></li>{prov}</ul>
</body></html>
"""
    atomic.write_text(out_html, page)


def bench_html(compare_jsons: list[str], out_html: str) -> None:
    """One page with every bench comparison: per signal, measured against simulated."""
    blocks = []
    for path in compare_jsons:
        data = json.loads(Path(path).read_text())
        rows = "".join(
            f"<tr><td>{html.escape(s['record'])}</td><td>{html.escape(s['simulated_signal'])}</td>"
            f"<td>{_cell(s['rms_error'])}</td><td>{_cell(s['max_abs_error'])}</td>"
            f"<td>{_cell(s['measured'].get('overshoot_pct'))}</td><td>{_cell(s['simulated'].get('overshoot_pct'))}</td>"
            f"<td>{_cell(s['measured'].get('settling_time_s'))}</td><td>{_cell(s['simulated'].get('settling_time_s'))}</td></tr>"
            for s in data["signals"]
        )
        phase = data.get("phase")
        phase_line = (f"<p>phase {html.escape(' vs '.join(phase['channels']))}: measured {_cell(phase['measured_deg'])}°, "
                      f"simulated {_cell(phase['simulated_deg'])}°, error {_cell(phase['error_deg'])}°</p>" if phase else "")
        blocks.append(
            f"<h2>{html.escape(Path(data['record']).name)}</h2><p>candidate <code>{html.escape(str(data.get('candidate_id')))}</code>, "
            f"run <code>{html.escape(data['run'])}</code>, offset {_cell(data['offset_s'])} s ({html.escape(data['align'])}), "
            f"quirks: {html.escape(', '.join(map(str, data.get('record_quirks', []))) or 'none')}</p>"
            "<table><tr><th>record</th><th>simulated</th><th>RMS error</th><th>max |error|</th><th>overshoot % meas.</th>"
            f"<th>overshoot % sim.</th><th>settling s meas.</th><th>settling s sim.</th></tr>{rows}</table>{phase_line}"
        )
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Bench records</title>"
            "<style>body{font-family:sans-serif;max-width:70em;margin:1em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body><h1>Bench records against simulation</h1>"
            + "".join(blocks) + "</body></html>")
    atomic.write_text(out_html, page)
