"""The decision page (``review.html``): what a reviewer needs to accept or refuse a promotion.

First screen: the chosen candidate, why, its gains and coefficients (float and
fixed point), the margin left on each constraint, the warnings (ties within the
objective's tolerance, analytic/simulated disagreement, a sample period the
board cannot schedule) and what promotion would change in the firmware. Then
the header diff, the winner's waveforms against the reference with the two
nearest runners-up, the trade-off between the objective and the tightest
constraint, the ranking and a count of the rejections. The page is one file
with its figures inline (PNG), no JavaScript.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from simbaflow.core import atomic  # noqa: E402
from simbaflow.review.decimate import minmax_decimate  # noqa: E402
from simbaflow.simulate.runio import read_run_parquet  # noqa: E402

#: Default tolerance of a tie: winners closer than this fraction of the objective are not distinguished.
DEFAULT_TIE_REL = 0.01
#: A constraint whose margin is below this fraction of its limit is called binding.
BINDING_REL = 0.1
#: Simulated against analytic: (kind, limit, unit) beyond which the page warns.
DISAGREEMENT = {
    "overshoot_pct": ("abs", 2.0, " pp"),
    "settling_time_s": ("rel", 0.25, ""),
    "phase_error_deg": ("abs", 0.5, "°"),
    "client_tracking_error_pct": ("abs", 1.0, " pp"),
}
#: Pixel width of the waveform figure: one min/max pair per column.
FIGURE_DPI = 100
WAVEFORM_WIDTH_IN = 10.0


@dataclass
class Preview:
    """What ``simbaflow promote --dry-run`` says about the selection (computed by the workflow step).

    Attributes
    ----------
    header
        The header promotion would write.
    diff
        ``name: old -> new`` lines.
    warnings
        Promotion's own notes (e.g. the board build's #error).
    refused
        The refusal sentence when promotion would refuse, else None.
    """

    header: str = ""
    diff: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused: str | None = None


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{float(value):.6g}"
    return html.escape(str(value))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def objective_of(selection: dict) -> tuple[str, str, float]:
    """``(sense, metric, tie_rel)`` of the selection's objective (``tie_rel`` defaults to 1 %)."""
    obj = selection["objective"]
    sense = "minimize" if "minimize" in obj else "maximize"
    return sense, obj[sense], float(obj.get("tie_rel", DEFAULT_TIE_REL))


def constraint_margins(constraints: dict, row: dict) -> list[dict]:
    """Each constraint with the winner's value, its limit and the margin left, tightest first.

    ``rel_margin`` is the margin over ``|limit|`` (the margin itself when the limit
    is 0); boolean constraints have no margin and come last.
    """
    out = []
    for name, rule in constraints.items():
        value = row.get(name)
        if isinstance(rule, bool):
            out.append({"name": name, "value": value, "limit": f"= {rule}", "margin": None, "rel_margin": math.inf})
            continue
        for bound in ("min", "max"):
            if bound not in rule:
                continue
            limit = float(rule[bound])
            margin = (float(value) - limit if bound == "min" else limit - float(value)) if _finite(value) else math.nan
            rel = margin / abs(limit) if limit else margin
            out.append({"name": name, "value": value, "limit": f"{bound} {limit:g}", "bound": limit,
                        "margin": margin, "rel_margin": rel})
    return sorted(out, key=lambda c: (math.isnan(c["rel_margin"]), c["rel_margin"]))


def ties(selection: dict) -> list[dict]:
    """Ranked candidates whose objective is within ``tie_rel`` of the winner's (the winner excluded)."""
    _, metric, tol = objective_of(selection)
    ranking = selection.get("ranking", [])
    if not ranking or not _finite(ranking[0].get(metric)):
        return []
    best = float(ranking[0][metric])
    scale = abs(best) or 1.0
    return [r for r in ranking[1:] if _finite(r.get(metric)) and abs(float(r[metric]) - best) <= tol * scale]


def disagreements(metrics: pd.DataFrame | None, candidate_id: str) -> list[str]:
    """The winner's simulated metrics that differ from the analytic prediction beyond :data:`DISAGREEMENT`."""
    if metrics is None:
        return []
    out = []
    mine = metrics[(metrics.candidate_id == candidate_id) & (metrics.status == "ok")]
    for rec in mine.to_dict(orient="records"):
        for metric, (kind, limit, unit) in DISAGREEMENT.items():
            sim, ana = rec.get(metric), rec.get(f"analytic_{metric}")
            if not (_finite(sim) and _finite(ana)):
                continue
            gap = abs(sim - ana) if kind == "abs" else abs(sim - ana) / (abs(ana) or 1.0)
            if gap > limit:
                shown = f"{gap:.3g}{unit}" if kind == "abs" else f"{gap:.0%}"
                bound = f"{limit:g}{unit}" if kind == "abs" else f"{limit:.0%}"
                out.append(f"{rec['design']}.{metric}: simulated {sim:.4g} against analytic {ana:.4g} "
                           f"({shown} apart, more than {bound}): the analytic model does not describe this run")
    return out


def schedule_warning(ts_s: float | None) -> str | None:
    """OwnTech's TaskAPI takes the control period in whole microseconds."""
    if ts_s is None or not _finite(ts_s):
        return None
    ts_ns = round(float(ts_s) * 1e9)
    if ts_ns % 1000:
        return (f"sample period Ts = {ts_ns / 1000:g} µs is not a whole number of µs: OwnTech's TaskAPI cannot "
                "schedule it on the board (the firmware build stops with #error)")
    return None


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _run_file(metrics: pd.DataFrame, cid: str, design: str) -> str | None:
    hit = metrics[(metrics.candidate_id == cid) & (metrics.design == design) & (metrics.status == "ok")]
    return str(hit.run_file.iloc[0]) if len(hit) else None


def _designs_of_interest(selection: dict, sim: dict) -> list[str]:
    """Simulated designs the objective and constraints name, the objective's first."""
    names = [selection["objective"][objective_of(selection)[0]], *selection["constraints"]]
    designs = [n.split(".")[0] for n in names if "." in n]
    ordered = [d for d in dict.fromkeys(designs) if d in sim.get("designs", {})]
    return ordered or list(sim.get("designs", {}))[:1]


#: Unit of a step design's signals, by design kind.
_STEP_UNITS = {"current": "A", "power": "W"}


def waveform_panels(selection: dict, sim: dict, style: str, metrics: pd.DataFrame) -> list[dict]:
    """Per panel: title, y label, and ``(label, time_s, values, role)`` traces (reference, winner, runners-up).

    Traces are decimated to the figure's pixel columns.
    """
    columns = int(WAVEFORM_WIDTH_IN * FIGURE_DPI)
    chosen = selection["candidate_id"]
    others = [r["candidate_id"] for r in selection.get("runners_up", [])][:2]
    cache: dict[str, pd.DataFrame] = {}

    def run(path):
        if path not in cache:
            cache[path] = read_run_parquet(path)[0]
        return cache[path]

    panels = []
    for design in _designs_of_interest(selection, sim):
        cfg = sim["designs"][design]
        if style == "client_server":
            specs = [("load voltage", "V", cfg["v_ref"], cfg["v_load"], 1.0),
                     ("client current", "A", cfg["i_server"], cfg["i_client"], None)]
        else:
            specs = [(cfg["response"], _STEP_UNITS.get(cfg.get("kind", "current"), ""), cfg["reference"],
                      cfg["response"], 1.0)]
        for title, unit, ref_signal, signal, ref_scale in specs:
            mine = _run_file(metrics, chosen, design)
            if mine is None:
                continue
            df = run(mine)
            # The client tracks k_gain × the server's current: that product is its reference.
            scale = ref_scale if ref_scale is not None else float(selection["candidate"].get("k_gain", 1.0))
            t_all, ref = df["time_s"].to_numpy(), df[ref_signal].to_numpy() * scale
            window = zoom_window(t_all, ref, style)
            ref_label = ref_signal if scale == 1.0 else f"{scale:g} × {ref_signal}"
            series = [(f"reference: {ref_label}", t_all, ref, "reference")]
            for role, cid in [("winner", chosen)] + [("runner-up", c) for c in others]:
                path = _run_file(metrics, cid, design)
                if path is not None:
                    d = run(path)
                    series.append((f"{role} {cid}", d["time_s"].to_numpy(), d[signal].to_numpy(), role))
            ylabel = f"{signal} ({unit})" if unit else signal
            for (lo, hi), label in ((None, None), ""), (window, "zoom: "):
                if label and lo is None:
                    continue
                traces = []
                for name, t, y, role in series:
                    keep = slice(None) if lo is None else (t >= lo) & (t <= hi)
                    traces.append((name, *minmax_decimate(t[keep], y[keep], columns), role))
                when = "" if lo is None else f" ({lo * 1e3:.3g}–{hi * 1e3:.3g} ms)"
                panels.append({"title": f"{label}{design}: {title}{when}", "ylabel": ylabel, "traces": traces})
    return panels


def zoom_window(t: np.ndarray, reference: np.ndarray, style: str) -> tuple[float | None, float | None]:
    """Where the candidates differ: the largest reference step after start-up, or the end of an AC run.

    A step window runs from just before the step to 60 % of the way to the next one;
    an AC window is the last 2.5 % of the run (5 ms of 0.2 s: a quarter period at 50 Hz,
    the PWM periods resolved).
    """
    if len(t) < 2:
        return None, None
    if style == "client_server":
        return float(t[-1] - 0.025 * (t[-1] - t[0])), float(t[-1])
    span = float(np.nanmax(reference) - np.nanmin(reference))
    if not span:
        return None, None
    jumps = np.flatnonzero(np.abs(np.diff(reference)) > 0.2 * span)
    later = jumps[t[jumps] > t[0] + 1e-3 * (t[-1] - t[0])]
    if not len(later):
        return None, None
    i = later[np.argmax(np.abs(np.diff(reference)[later]))]
    nxt = later[t[later] > t[i] + 1e-9]
    end = float(t[nxt[0]]) if len(nxt) else float(t[-1])
    length = 0.6 * (end - float(t[i]))
    return float(t[i]) - 0.05 * length, float(t[i]) + length


# The winner broad and underneath, runners-up thin on top: where they coincide, both stay visible.
# The reference dashed and underneath: a switched one (the AC server current) would otherwise hide the rest.
_STYLE = {"reference": {"color": "black", "lw": 1.1, "ls": "--", "zorder": 1},
          "winner": {"color": "#d62728", "lw": 2.4, "alpha": 0.75, "zorder": 2}}
_CYCLE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]


def waveform_figure(panels: list[dict], panel_height_in: float = 3.0) -> str | None:
    """Panels of ``(label, time_s, values, role)`` traces as one inline PNG (``data:`` URI), or None.

    ``reference`` traces are dashed black, the ``winner`` thick red, others take the
    colour cycle; a legend of more than eight entries goes beside the axes.
    """
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(WAVEFORM_WIDTH_IN, panel_height_in * len(panels)),
                             squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        colours = iter(_CYCLE * (1 + len(panel["traces"]) // len(_CYCLE)))
        for label, t, y, role in panel["traces"]:
            style = dict(_STYLE.get(role) or {"lw": 0.9, "alpha": 0.9, "zorder": 3, "color": next(colours)})
            ax.plot(np.asarray(t) * 1e3, y, label=label, **style)
        ax.set(title=panel["title"], xlabel="time (ms)", ylabel=panel["ylabel"])
        ax.grid(alpha=0.3)
        if len(panel["traces"]) > 8:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=1 + len(panel["traces"]) // 16)
        else:
            ax.legend(fontsize=8, loc="best", framealpha=0.9)
    fig.tight_layout()
    return _png(fig)


def tradeoff_figure(rows: list[dict], selection: dict, margins: list[dict]) -> tuple[str | None, str]:
    """Objective against the tightest numeric constraint: every candidate, feasible set, the pick.

    Returns the inline PNG (or None) and the name of the constraint on the x axis.
    """
    sense, metric, _ = objective_of(selection)
    axis = next((m for m in margins if "bound" in m and m["name"] != metric), None)
    if axis is None:
        return None, ""
    x_name = axis["name"]
    feasible = {r["candidate_id"] for r in selection.get("ranking", [])}
    chosen = selection["candidate_id"]
    runners = {r["candidate_id"] for r in selection.get("runners_up", [])[:2]}
    pts = [(r["candidate_id"], float(r[x_name]), float(r[metric])) for r in rows
           if _finite(r.get(x_name)) and _finite(r.get(metric))]
    if not pts:
        return None, x_name
    fig, ax = plt.subplots(figsize=(8, 4.2))
    groups = [("infeasible", lambda c: c not in feasible, {"color": "#bbbbbb", "marker": "o", "s": 18}),
              ("feasible", lambda c: c in feasible and c != chosen and c not in runners,
               {"color": "#1f77b4", "marker": "o", "s": 22}),
              ("runners-up", lambda c: c in runners, {"color": "#2ca02c", "marker": "D", "s": 40}),
              (f"pick {chosen}", lambda c: c == chosen, {"color": "#d62728", "marker": "*", "s": 220})]
    for label, keep, style in groups:
        sel = [(x, y) for c, x, y in pts if keep(c)]
        if sel:
            xs, ys = zip(*sel)
            ax.scatter(xs, ys, label=f"{label} ({len(sel)})" if not label.startswith("pick") else label,
                       zorder=3 if label.startswith("pick") else 2, **style)
    ax.axvline(axis["bound"], color="black", ls="--", lw=1, label=f"limit: {x_name} {axis['limit']}")
    ax.set(xlabel=x_name, ylabel=f"{metric} ({sense})",
           title="Objective against the tightest constraint")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig), x_name


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><tr>{head}</tr>{body}</table>"


def _gains_table(cand: dict, fields: tuple[str, ...]) -> str:
    rows = []
    for name in fields:
        if name not in cand or name.endswith("_fixed"):
            continue
        fixed = cand.get(f"{name}_fixed")
        rows.append([f"<code>{html.escape(name)}</code>", _num(cand[name]),
                     _num(fixed) + (f" <small>({html.escape(str(cand.get(name + '_hex')))})</small>"
                                    if cand.get(name + "_hex") else "") if fixed is not None else ""])
    fmt = cand.get("q_format")
    if not any(r[2] for r in rows):  # a float-only firmware (the AC PR): no fixed-point column
        return _table(["parameter", "value"], [r[:2] for r in rows], "gains")
    return _table(["parameter", "float", f"fixed point{' ' + html.escape(str(fmt)) if fmt else ''}"], rows, "gains")


def _margins_table(margins: list[dict]) -> str:
    rows = []
    for i, m in enumerate(margins):
        binding = m["margin"] is not None and _finite(m["margin"]) and (i == 0 or m["rel_margin"] < BINDING_REL)
        margin = "–" if m["margin"] is None else (f"{m['margin']:.4g} ({m['rel_margin']:.0%})"
                                                  if _finite(m["margin"]) else "missing")
        rows.append([f"<code>{html.escape(m['name'])}</code>" + (" <b>binding</b>" if binding else ""),
                     _num(m["value"]), html.escape(m["limit"]), margin])
    return _table(["constraint", "winner", "limit", "margin left"], rows, "margins")


def _diff_rows(diff: list[str]) -> list[list[str]]:
    rows = []
    for line in diff:
        name, _, change = line.partition(": ")
        old, _, new = change.partition(" -> ")
        rows.append([f"<code>{html.escape(name)}</code>", f"<code>{html.escape(old)}</code>",
                     f"<code>{html.escape(new)}</code>"])
    return rows


#: Parts of a ``#define`` name that mark a gain or coefficient: listed first in the summary.
_GAIN_NAMES = ("_KP", "_KI", "_KR", "_A0", "_A1", "_B0", "_B1", "K_GAIN")


def _value_changes(diff: list[str]) -> list[str]:
    """Diff lines of ``#define`` values (upper-case names), not of the provenance comment; gains first."""
    values = [line for line in diff if line.split(":", 1)[0].isupper()]
    return sorted(values, key=lambda line: not any(g in line.split(":", 1)[0] for g in _GAIN_NAMES))


CSS = """
.sf-review{font-family:system-ui,sans-serif;font-size:14px;line-height:1.35;color:#111}
.sf-review h1{font-size:20px;margin:4px 0 6px}.sf-review h2{font-size:16px;margin:14px 0 6px}
.sf-review table{border-collapse:collapse;margin:0 0 6px;width:auto}.sf-review td,.sf-review th{border:1px solid #ccc;
padding:2px 6px;text-align:left;font-size:13px}.sf-review th{background:#f3f3f3}
.sf-review .row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.sf-review .warn{background:#fff4e5;border-left:4px solid #e08a00;padding:4px 8px;margin:4px 0}
.sf-review .ok{background:#eef7ee;border-left:4px solid #3a9a3a;padding:4px 8px;margin:4px 0}
.sf-review .why{margin:2px 0 6px}.sf-review img{max-width:100%}.sf-review small{color:#555}
"""


#: On the report's front page: Snakemake centres its content (a page taller or wider than the window
#: loses its top or left) and keeps the description narrow; these undo both for the page holding the decision.
REPORT_CSS = """
div.h-screen:has(#decision){align-items:flex-start;justify-content:flex-start}
div.max-w-lg:has(#decision){max-width:60rem;min-width:48rem}
.sf-review code::before,.sf-review code::after{content:none}
.sf-review table{margin:0 0 6px}.sf-review td,.sf-review th{padding:1px 5px;font-size:12px}
.sf-review .row{gap:10px}
"""


def decision_section(selection: dict, fields: tuple[str, ...], margins: list[dict], warnings: list[str],
                     preview: Preview, link: str = "") -> str:
    """The first screen: choice, why, gains, margins, warnings, what promotion changes."""
    cid = html.escape(selection["candidate_id"])
    warn = "".join(f"<div class='warn'>⚠ {html.escape(w)}</div>" for w in warnings) or \
        "<div class='ok'>No warnings: no tie within the tolerance, simulation agrees with the analysis, " \
        "the sample period is schedulable.</div>"
    if preview.refused:
        firmware = f"<div class='warn'>⚠ promotion would be refused: {html.escape(preview.refused)}</div>"
    else:
        values = _value_changes(preview.diff)
        header = f"<code>{html.escape(preview.header)}</code>"
        if values:
            what = (f"changes {len(values)} value(s) of {header}: " + "; ".join(html.escape(v) for v in values[:3])
                    + (f"; and {len(values) - 3} more (diff below)" if len(values) > 3 else ""))
        elif preview.diff:
            what = (f"changes no gain or coefficient of {header}, only its provenance comment ("
                    + ", ".join(html.escape(line.split(":", 1)[0]) for line in preview.diff) + ")")
        else:
            what = f"leaves {header} unchanged"
        firmware = f"<p><b>Promoting</b> {what}.</p>"
    return (f"<section id='decision' class='sf-review'>"
            f"<h1>Decision: promote <code>{cid}</code></h1>"
            f"<p class='why'>{html.escape(selection['reason'])}.</p>{warn}{firmware}"
            f"<div class='row'><div>{_gains_table(selection['candidate'], fields)}</div>"
            f"<div>{_margins_table(margins)}</div></div>{link}</section>")


def ranking_table(selection: dict, limit: int = 10) -> str:
    """The first ``limit`` feasible candidates with their gap to the winner; ties within ``tie_rel`` marked."""
    sense, metric, tol = objective_of(selection)
    ranking = selection.get("ranking", [])
    best = ranking[0].get(metric) if ranking else None
    tied = {r["candidate_id"] for r in ties(selection)}
    rows = []
    for i, r in enumerate(ranking[:limit], start=1):
        value = r.get(metric)
        gap = (f"{(float(value) - float(best)) / (abs(float(best)) or 1.0):+.2%}"
               if _finite(value) and _finite(best) else "–")
        note = "winner" if i == 1 else ("tie" if r["candidate_id"] in tied else "")
        rows.append([str(i), f"<code>{html.escape(r['candidate_id'])}</code>", _num(value), gap, note])
    more = f"<p><small>{len(ranking) - limit} more feasible candidates in selection.json.</small></p>" \
        if len(ranking) > limit else ""
    return (f"<p>Objective: {sense} <code>{html.escape(metric)}</code>; candidates within {tol:.1%} of the "
            f"winner are a tie (<code>selection.objective.tie_rel</code>).</p>"
            + _table(["#", "candidate", html.escape(metric), "vs winner", ""], rows) + more)


def rejected_summary(selection: dict) -> str:
    """How many candidates each constraint rejected; the full list folded."""
    rejected = selection.get("rejected", [])
    counts: dict[str, int] = {}
    for r in rejected:
        for broken in r["broken"]:
            name = broken.split(" ", 1)[0]
            counts[name] = counts.get(name, 0) + 1
    rows = [[f"<code>{html.escape(k)}</code>", str(v)] for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    detail = "".join(f"<li><code>{html.escape(r['candidate_id'])}</code>: {html.escape('; '.join(r['broken']))}</li>"
                     for r in rejected)
    return (f"<p>{len(rejected)} candidates rejected; a candidate may break several constraints.</p>"
            + _table(["constraint broken", "candidates"], rows)
            + (f"<details><summary>every rejected candidate</summary><ul>{detail}</ul></details>" if rejected else ""))


def write_review(selection: dict, rows: list[dict], metrics: pd.DataFrame | None, sim: dict, style: str,
                 fields: tuple[str, ...], ts_s: float | None, preview: Preview, out_html: str | Path,
                 out_fragment: str | Path) -> list[str]:
    """Write ``review.html`` and its decision section alone (for the report's front page).

    Returns the warnings shown.
    """
    best = next((r for r in rows if r["candidate_id"] == selection["candidate_id"]), selection["candidate"])
    margins = constraint_margins(selection["constraints"], {**best, **selection["candidate"]})
    _, metric, tol = objective_of(selection)
    warnings = []
    tied = ties(selection)
    if tied:
        warnings.append(f"tie: {', '.join(r['candidate_id'] for r in tied)} within {tol:.1%} of the winner's "
                        f"{metric}; the ranking does not separate them (pick on another ground, or accept either)")
    warnings += disagreements(metrics, selection["candidate_id"])
    sched = schedule_warning(ts_s)
    if sched:
        warnings.append(sched)
    section = decision_section(selection, fields, margins, warnings, preview)
    panels = waveform_panels(selection, sim, style, metrics) if metrics is not None and sim else []
    wave = waveform_figure(panels)
    trade, x_name = tradeoff_figure(rows, selection, margins)
    signals = sorted({label.split(": ", 1)[-1] for p in panels for label, *_ in p["traces"] if label.startswith("ref")})
    diff_block = ("<p>No header would change.</p>" if not preview.diff else
                  _table(["field", "firmware now", "after promotion"], _diff_rows(preview.diff), "diff"))
    notes = "".join(f"<div class='warn'>⚠ {html.escape(w)}</div>" for w in preview.warnings)
    body = (
        section
        + "<div class='sf-review'>"
        + f"<h2 id='firmware'>What promotion changes in <code>{html.escape(preview.header)}</code></h2>"
        + f"<p><small>As <code>simbaflow promote results/{html.escape(selection['study'])}/selection.json "
          "--dry-run</code> prints it; nothing was written.</small></p>"
        + (f"<div class='warn'>⚠ refused: {html.escape(preview.refused)}</div>" if preview.refused else diff_block)
        + notes
        + ("<h2 id='waveforms'>Simulated waveforms: the winner, its reference and the two nearest runners-up</h2>"
           f"<img alt='waveforms' src='{wave}'><p><small>Decimated for display (minimum and maximum per pixel "
           f"column); full resolution in <code>runs/</code>. References: {html.escape(', '.join(signals))}.</small></p>"
           if wave else "")
        + (f"<h2 id='tradeoff'>Trade-off: objective against <code>{html.escape(x_name)}</code></h2>"
           f"<img alt='trade-off' src='{trade}'>" if trade else "")
        + f"<h2 id='ranking'>Ranking of the feasible candidates</h2>{ranking_table(selection)}"
        + f"<h2 id='rejected'>Rejected candidates</h2>{rejected_summary(selection)}"
        + "<h2>Provenance</h2><ul>"
        + f"<li>spec <code>{html.escape(selection['spec_path'])}</code> (SHA-256 "
          f"<code>{html.escape(selection['spec_sha256'][:16])}…</code>)</li>"
        + "".join(f"<li>{html.escape(k)}: <code>{html.escape(str(v))}</code></li>"
                  for k, v in selection.get("provenance", {}).items())
        + f"<li>engine: <code>{html.escape(str(selection.get('engine')))}</code></li></ul></div>"
    )
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Review: {html.escape(selection['study'])}</title><style>{CSS}"
            "body{max-width:1200px;margin:8px auto;padding:0 12px}</style></head><body>"
            f"{body}</body></html>\n")
    atomic.write_text(out_html, page)
    fragment = (f"<style>{CSS}{REPORT_CSS}</style>"
                + decision_section(selection, fields, margins, warnings, preview,
                                   link="<p>Full review (diff, waveforms, trade-off, ranking): "
                                        "category <b>Decision</b>, <code>review.html</code>.</p>"))
    atomic.write_text(out_fragment, fragment + "\n")
    return warnings
