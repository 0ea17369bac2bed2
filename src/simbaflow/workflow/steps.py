"""What the workflow's rules call: each stage of a study as a function on files.

Every function takes the spec path, finds the study's kind once
(:func:`simbaflow.kinds.kind_of`) and hands the stage the kind's functions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from simbaflow.core import atomic
from simbaflow.core.errors import SpecError
from simbaflow.core.paths import results_dir
from simbaflow.core.provenance import provenance
from simbaflow.core.spec import load_spec
from simbaflow.core.tables import from_json, jsonable, read_candidates, row_from_json
from simbaflow.kinds import expand_candidates, kind_of


def candidate_batches(ids: list[str], batch_size: int) -> dict[str, list[str]]:
    """Candidate ids in named batches of at most ``batch_size`` (``b000``, ``b001``, ...)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return {f"b{i // batch_size:03d}": ids[i : i + batch_size] for i in range(0, len(ids), batch_size)}


def evaluate_batch(spec_path: str | Path, ids: list[str], out_json: str | Path) -> None:
    """Evaluate candidates ``ids`` and write their rows (with what the figures need) as one JSON list."""
    spec = load_spec(spec_path)
    kind = kind_of(spec)
    cands = {c["candidate_id"]: c for c in expand_candidates(spec)}
    rows = []
    for cid in ids:
        if cid not in cands:
            raise SpecError(f"{spec_path}: no candidate {cid!r} in this study's sweep")
        rows.append(kind.evaluate(spec, cands[cid]))
    atomic.write_text(out_json, json.dumps(jsonable(rows), indent=1))


def read_rows(batch_jsons: list[str | Path]) -> list[dict]:
    """The candidate rows of evaluated batches, in order."""
    return [row_from_json(r) for path in batch_jsons for r in json.loads(Path(path).read_text())]


def gather_candidates(spec_path: str | Path, batch_jsons: list[str | Path], out_csv: str | Path,
                      out_corners_csv: str | Path | None = None) -> pd.DataFrame:
    """Collect the evaluated batches into ``candidates.csv`` (the kind's columns) and, when asked,
    ``corners.csv`` (one row per candidate and plant corner)."""
    columns = kind_of(load_spec(spec_path)).columns()
    rows = read_rows(batch_jsons)
    df = pd.DataFrame([{k: r.get(k, math.nan) for k in columns} for r in rows], columns=columns)
    with atomic.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    if out_corners_csv is not None:
        corner_rows = [{k: from_json(v) for k, v in c.items()} for r in rows for c in r.get("corners", [])]
        with atomic.atomic_path(out_corners_csv) as tmp:
            pd.DataFrame(corner_rows).to_csv(tmp, index=False)
    return df


def plan_simulations(spec_path: str | Path, batch_jsons: list[str | Path], out_plan: str | Path) -> None:
    """Write ``plan.json``: the runs of the simulate stage, after the analytic results.

    Under ``simulate.candidates: feasible`` only the candidates meeting the
    analytic constraints are simulated; constraints on simulated metrics
    (``<design>.<metric>``) are left to the selection.
    """
    from simbaflow.select.ranking import broken_constraints
    from simbaflow.simulate.plan import check_plant_map, make_plan

    spec = load_spec(spec_path)
    kind = kind_of(spec)
    sim = kind.simulate_settings(spec)
    rows = read_rows(batch_jsons)
    feasible = None
    if sim.get("candidates", "all") == "feasible":
        analytic = {k: v for k, v in spec["selection"]["constraints"].items() if "." not in k}
        feasible = {r["candidate_id"] for r in rows if not broken_constraints(r, analytic)}
    # Every simulated candidate runs on the plant corners too, through the designs' plant maps.
    corners = kind.corners(spec)
    varied = sorted({name for c in corners for name in c.changes})
    check_plant_map(sim, varied, list(corners[0].plant), str(spec_path))
    make_plan(sim, rows, feasible, [(c.corner_id, c.plant) for c in corners[1:]]).write(out_plan)


def gather_metrics(spec_path: str | Path, plan_json: str | Path, candidates_csv: str | Path,
                   out_csv: str | Path, corners_csv: str | Path | None = None) -> pd.DataFrame:
    """``metrics.csv``: one row per (candidate, design, corner), measured as the study's kind says;
    a corner run's prediction is the analysis of that corner (``corners.csv``)."""
    from simbaflow.select.gather import gather_metrics as gather
    from simbaflow.simulate.plan import Plan

    spec = load_spec(spec_path)
    kind = kind_of(spec)
    plan = Plan.read(plan_json)
    feasible = set(plan.feasible) if plan.feasible is not None else None
    corner_rows = None
    if corners_csv is not None and Path(corners_csv).stat().st_size > 1:
        corner_rows = pd.read_csv(corners_csv).to_dict(orient="records")
    return gather(plan, kind.simulate_settings(spec), read_candidates(candidates_csv), kind.measures(spec),
                  results_dir(spec), out_csv, feasible, corner_rows)


def select_to_json(spec_path: str | Path, candidates_csv: str | Path, out_json: str | Path,
                   metrics_csv: str | Path | None = None) -> dict:
    """Choose the winner from ``candidates.csv`` (and simulated ``metrics.csv``) and write ``selection.json``.

    With simulated metrics, constraints and the objective may name
    ``<design>.<metric>`` columns (e.g. ``discrete_pi.overshoot_pct``).
    ``tables_sha256`` records the SHA-256 of the tables read, so that
    ``simbaflow promote`` re-derives the choice from exactly these bytes.
    """
    import hashlib
    import io

    from simbaflow.select.document import selection_document

    spec = load_spec(spec_path)
    kind = kind_of(spec)
    # Hashed and parsed from the same bytes: the hash is of what was selected from.
    tables = {"candidates.csv": Path(candidates_csv).read_bytes()}
    rows = read_candidates(io.BytesIO(tables["candidates.csv"]))
    columns = kind.columns()
    engine = "analytic"
    if metrics_csv is not None:
        from simbaflow.select.gather import merge_simulated

        tables["metrics.csv"] = Path(metrics_csv).read_bytes()
        rows, added = merge_simulated(rows, io.BytesIO(tables["metrics.csv"]))
        columns += added
        engines = sorted(set(pd.read_csv(io.BytesIO(tables["metrics.csv"]), dtype={"engine": str})["engine"].dropna()))
        engine = ",".join(engines) or "none"
    plant = spec[kind.section]["plant"] if kind.section != "sweep" else spec["plant"]
    document = selection_document(spec, kind.name, plant, kind.corners(spec), rows, columns, engine,
                                  {name: hashlib.sha256(data).hexdigest() for name, data in tables.items()},
                                  str(spec_path))
    out = {**document, "spec_path": str(spec_path), "provenance": provenance(spec)}
    atomic.write_text(out_json, json.dumps(jsonable(out), indent=1))
    return out


def design_figures(spec_path: str | Path, batch_jsons: list[str], table_csv: str, selection_json: str,
                   outputs: list[str]) -> None:
    """The kind's analytic figures (``figures/<name>.png``)."""
    kind_of(load_spec(spec_path)).draw_figures(batch_jsons, table_csv, selection_json, outputs)


def simulated_figures(spec_path: str | Path, metrics_csv: str, selection_json: str, outputs: list[str]) -> None:
    """Waveforms, metric map and agreement figures of the simulate stage."""
    from simbaflow.review.simulated import simulated_figures as draw

    spec = load_spec(spec_path)
    kind = kind_of(spec)
    draw(spec, kind.simulate_settings(spec), kind.waveforms, metrics_csv, selection_json, outputs)


def candidate_pages(spec_path: str | Path, candidates_csv: str, metrics_csv: str, selection_json: str,
                    outputs: list[str]) -> None:
    """One page per candidate: its analytic row and its runs."""
    from simbaflow.review.simulated import candidate_pages as pages

    spec = load_spec(spec_path)
    pages(spec, kind_of(spec).simulate_settings(spec), candidates_csv, metrics_csv, selection_json, outputs)


def promotion_preview(selection_json: str | Path, firmware_dir: str | Path = "firmware"):
    """What ``simbaflow promote --dry-run`` would say: header, old → new diff, notes, or the refusal.

    Nothing is written. Lives here, above every stage, because review comes before
    promote in the layers.
    """
    from simbaflow.core.errors import SimbaflowError
    from simbaflow.kinds import promote
    from simbaflow.review.decision import Preview

    try:
        result = promote(selection_json, firmware_dir=firmware_dir, dry_run=True)
    except (SimbaflowError, ValueError) as exc:
        return Preview(refused=str(exc))
    return Preview(header=str(result.header), diff=list(result.diff), warnings=list(result.warnings))


def review_page(spec_path: str | Path, candidates_csv: str, metrics_csv: str | None, selection_json: str,
                out_html: str, out_fragment: str, firmware_dir: str | Path = "firmware") -> list[str]:
    """``review.html`` (the decision page) and its decision section for the report's front page."""
    from simbaflow.review.decision import write_review

    spec = load_spec(spec_path)
    kind = kind_of(spec)
    selection = json.loads(Path(selection_json).read_text())
    rows = read_candidates(candidates_csv)
    metrics = None
    if metrics_csv:
        from simbaflow.select.gather import merge_simulated

        rows, _ = merge_simulated(rows, metrics_csv)
        metrics = pd.read_csv(metrics_csv, dtype={"message": str, "engine": str, "run_file": str})
    ts_s = selection["candidate"].get("ts_s")
    if ts_s is None and kind.control_period_s is not None:
        ts_s = kind.control_period_s(spec)
    sim = kind.simulate_settings(spec) if metrics is not None else {}
    return write_review(selection, rows, metrics, sim, kind.waveforms, kind.decision_fields, ts_s,
                        promotion_preview(selection_json, firmware_dir), out_html, out_fragment)
