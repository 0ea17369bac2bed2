"""Rank candidates against a study's constraints and objective, and explain the choice."""

from __future__ import annotations

import math
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from simbaflow import __version__
from simbaflow.core.errors import NoFeasibleCandidate, SpecError

#: How many runners-up a selection lists.
RUNNERS_UP = 3


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def broken_constraints(row: dict[str, Any], constraints: dict[str, Any]) -> list[str]:
    """Human-readable list of the constraints ``row`` breaks (empty when it meets all).

    A constraint is ``{metric: {"min": x, "max": y}}`` or ``{metric: true|false}``;
    a missing or NaN metric breaks its constraint (never silently passes).
    """
    broken = []
    if row.get("status", "ok") != "ok":
        broken.append(f"status = {row.get('status')} ({row.get('reason', '')})")
    for metric, rule in constraints.items():
        value = row.get(metric)
        if isinstance(rule, bool):
            if _is_missing(value) or bool(value) is not rule:
                broken.append(f"{metric} = {value} (required {rule})")
            continue
        if _is_missing(value):
            design = metric.split(".")[0] if "." in metric else None
            run_status = row.get(f"{design}.status") if design else None
            failed = f" ({design} run {run_status})" if run_status not in (None, "ok") and not _is_missing(run_status) else ""
            broken.append(f"{metric} is not available{failed}")
            continue
        if "min" in rule and value < rule["min"]:
            broken.append(f"{metric} = {value:.4g} < min {rule['min']}")
        if "max" in rule and value > rule["max"]:
            broken.append(f"{metric} = {value:.4g} > max {rule['max']}")
    return broken


def check_metric_names(selection: dict, columns: list[str], source: str) -> None:
    """Reject constraints or objectives naming metrics the table does not have."""
    names = list(selection.get("constraints", {})) + list(selection.get("objective", {}).values())
    for name in names:
        if name not in columns:
            raise SpecError(
                f"{source}: selection: unknown metric {name!r}; expected one of {', '.join(sorted(columns))}"
            )


def select(rows: list[dict[str, Any]], selection: dict, source: str = "<spec>") -> dict[str, Any]:
    """Pick the best candidate meeting every constraint.

    Returns
    -------
    dict
        ``candidate`` (the winning row), ``runners_up``, ``rejected`` (each with
        the constraints it broke), ``constraints_met``, ``reason`` and
        ``ranking`` (every feasible candidate, best first, with its objective value).

    Raises
    ------
    NoFeasibleCandidate
        When no row meets every constraint; the message names the binding
        constraints and how many candidates each one rejected.
    """
    constraints = selection.get("constraints", {})
    objective = selection.get("objective", {"minimize": "settling_time_s"})
    (sense, metric), = objective.items()
    feasible, rejected = [], []
    for row in rows:
        broken = broken_constraints(row, constraints)
        (rejected.append({"candidate_id": row["candidate_id"], "broken": broken}) if broken else feasible.append(row))
    if not feasible:
        counts: dict[str, int] = {}
        for r in rejected:
            for b in r["broken"]:
                key = b.split(" ")[0]
                counts[key] = counts.get(key, 0) + 1
        binding = ", ".join(f"{k} (rejects {v} of {len(rows)})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        raise NoFeasibleCandidate(
            f"{source}: no candidate meets every selection constraint; binding constraints: {binding}"
        )

    def score(row):
        value = row.get(metric)
        value = math.inf if _is_missing(value) else float(value)
        return (value if sense == "minimize" else -value, row["candidate_id"])

    ranked = sorted(feasible, key=score)
    best = ranked[0]
    runners = ranked[1 : 1 + RUNNERS_UP]
    reason = (
        f"{best['candidate_id']} has the {'smallest' if sense == 'minimize' else 'largest'} {metric} "
        f"({best.get(metric):.4g}) of the {len(feasible)} candidates out of {len(rows)} that meet "
        f"all {len(constraints)} constraints"
    )
    if runners:
        reason += f"; next best is {runners[0]['candidate_id']} ({runners[0].get(metric):.4g})"
    return {
        "candidate": best,
        "runners_up": runners,
        "rejected": rejected,
        "constraints_met": {name: True for name in constraints},
        "reason": reason,
        "ranking": [{"candidate_id": r["candidate_id"], metric: r.get(metric)} for r in ranked],
    }


def git_commit(path: str | Path = ".") -> str:
    """HEAD of the repository holding ``path``, or ``unknown``."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(spec: dict) -> dict[str, str]:
    """Where a selection came from: spec hash, simbaflow version, git commit, time."""
    return {
        "simbaflow_version": __version__,
        "git_commit": git_commit(Path(spec["_path"]).resolve().parent),
        "spec_sha256": spec["_sha256"],
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
