"""The analytic sweep's stages as plain functions on files (the workflow's rules call these)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simbaflow import atomic
from simbaflow.candidates import COLUMNS, evaluate_candidate
from simbaflow.errors import SpecError
from simbaflow.selection import check_metric_names, provenance, select
from simbaflow.spec import load_spec
from simbaflow.sweepspace import expand_candidates, study_kind


def results_dir(spec: dict, root: str | Path = "results") -> Path:
    """``results/<study>``."""
    return Path(root) / spec["study"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else (str(v) if math.isinf(v) else v)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _from_json(value: Any) -> Any:
    """Undo :func:`_jsonable` for scalars: None -> NaN, 'inf' -> inf."""
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value


def evaluate_to_json(spec_path: str | Path, ids: list[str], out_paths: list[str | Path]) -> None:
    """Evaluate candidates ``ids`` and write each row and its step responses as JSON."""
    spec = load_spec(spec_path)
    cands = {c["candidate_id"]: c for c in expand_candidates(spec)}
    for cid, out in zip(ids, out_paths, strict=True):
        if cid not in cands:
            raise SpecError(f"{spec_path}: no candidate {cid!r} in this study's sweep")
        if study_kind(spec) == "ac":
            from simbaflow.ac_design import evaluate_ac_candidate

            row = evaluate_ac_candidate(spec, cands[cid])
        else:
            row = evaluate_candidate(spec, cands[cid], with_responses=True)
        atomic.write_text(out, json.dumps(_jsonable(row), indent=1))


def table_columns(spec: dict) -> list[str]:
    """Columns of the study's ``candidates.csv``."""
    if study_kind(spec) == "ac":
        from simbaflow.ac_design import COLUMNS as AC_COLUMNS

        return list(AC_COLUMNS)
    return list(COLUMNS)


def load_candidate_json(path: str | Path) -> dict:
    data = json.loads(Path(path).read_text())
    return {k: (_from_json(v) if k != "responses" else v) for k, v in data.items()}


def gather(json_paths: list[str | Path], out_csv: str | Path, columns: list[str] = COLUMNS) -> pd.DataFrame:
    """Collect per-candidate JSON files into ``candidates.csv`` (``columns``, by default the DC study's)."""
    rows = [load_candidate_json(p) for p in json_paths]
    df = pd.DataFrame([{k: r.get(k, math.nan) for k in columns} for r in rows], columns=columns)
    with atomic.atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    return df


def read_candidates(csv_path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``candidates.csv`` as dicts with NaN for empty cells."""
    text_columns = {"poles": str, "ct_poles": str, "ct_zeros": str, "reason": str, "a0_hex": str, "a1_hex": str}
    df = pd.read_csv(csv_path, dtype=text_columns, keep_default_na=True)
    return df.to_dict(orient="records")


def select_to_json(spec_path: str | Path, candidates_csv: str | Path, out_json: str | Path,
                   metrics_csv: str | Path | None = None) -> dict:
    """Choose the winner from ``candidates.csv`` (and simulated ``metrics.csv``) and write ``selection.json``.

    With simulated metrics, constraints and the objective may name
    ``<design>.<metric>`` columns (e.g. ``discrete_pi.overshoot_pct``).
    """
    spec = load_spec(spec_path)
    rows = read_candidates(candidates_csv)
    columns = table_columns(spec)
    engine = "analytic"
    if metrics_csv is not None:
        from simbaflow.simulated import merge_simulated

        rows, added = merge_simulated(rows, metrics_csv)
        columns += added
        engines = sorted(set(pd.read_csv(metrics_csv, dtype={"engine": str})["engine"].dropna()))
        engine = ",".join(engines) or "none"
    check_metric_names(spec["selection"], columns, str(spec_path))
    choice = select(rows, spec["selection"], str(spec_path))
    best = choice["candidate"]
    out = {
        "study": spec["study"],
        "spec_path": str(spec_path),
        "spec_sha256": spec["_sha256"],
        "candidate_id": best["candidate_id"],
        "candidate": best,
        "realisation": best.get("realisation", best.get("discretisation")),
        "fixed_point": {**spec["fixed_point"], **({"q_format": best["q_format"]} if "q_format" in best else {})},
        "controller": spec["controller"],
        "plant": spec.get("plant") or spec["ac"]["plant"],
        "constraints": spec["selection"]["constraints"],
        "objective": spec["selection"]["objective"],
        "constraints_met": choice["constraints_met"],
        "reason": choice["reason"],
        "runners_up": choice["runners_up"],
        "rejected": choice["rejected"],
        "ranking": choice["ranking"],
        "engine": engine,
        "run_files": {k.split(".")[0]: v for k, v in best.items() if k.endswith(".run_file")},
        "provenance": provenance(spec),
    }
    atomic.write_text(out_json, json.dumps(_jsonable(out), indent=1))
    return out
