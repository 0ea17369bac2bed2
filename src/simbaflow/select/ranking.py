"""Rank candidates against a study's constraints and objective, and explain the choice."""

from __future__ import annotations

import math
from typing import Any

from simbaflow.core.errors import NoFeasibleCandidate, SpecError

#: How many runners-up a selection lists.
RUNNERS_UP = 3


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _corner_note(row: dict[str, Any], metric: str, corner_labels: dict[str, str] | None) -> str:
    """`` at corner c3 (l_h ... )`` for a worst-case metric (its ``<metric>_corner`` column), else ``""``."""
    corner = row.get(f"{metric}_corner")
    if _is_missing(corner) or corner in ("", None):
        return ""
    return f" at corner {(corner_labels or {}).get(corner, corner)}"


def broken_constraints(row: dict[str, Any], constraints: dict[str, Any],
                       corner_labels: dict[str, str] | None = None) -> list[str]:
    """Human-readable list of the constraints ``row`` breaks (empty when it meets all).

    A constraint is ``{metric: {"min": x, "max": y}}`` or ``{metric: true|false}``;
    a missing or NaN metric breaks its constraint (never silently passes). A
    worst-case metric (``worst_*``, ``<design>.worst.*``) names the plant corner
    that breaks it (``corner_labels``: corner id to its description).
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
        note = _corner_note(row, metric, corner_labels)
        if "min" in rule and value < rule["min"]:
            broken.append(f"{metric} = {value:.4g} < min {rule['min']}{note}")
        if "max" in rule and value > rule["max"]:
            broken.append(f"{metric} = {value:.4g} > max {rule['max']}{note}")
    return broken


def objective_parts(selection: dict) -> tuple[str, str, float, tuple[str, str] | None]:
    """``(sense, metric, tie_rel, secondary)`` of a selection's objective (secondary as given, or None)."""
    objective = selection.get("objective", {"minimize": "settling_time_s"})
    sense = "minimize" if "minimize" in objective else "maximize"
    secondary = objective.get("secondary")
    return (sense, objective[sense], float(objective.get("tie_rel", 0.0)),
            next(iter(secondary.items())) if secondary else None)


#: The secondary objective when ``tie_rel`` is given without one (and the table has it).
DEFAULT_SECONDARY = ("maximize", "worst_phase_margin_deg")


def nominal_name(metric: str) -> str:
    """The nominal-plant metric a worst-case one stands for (``worst_x`` -> ``x``,
    ``d.worst.x`` -> ``d.x``); other names are returned as they are."""
    if metric == "stable_all_corners":
        return "stable"
    if metric.startswith("worst_"):
        return metric[len("worst_"):]
    if ".worst." in metric:
        design, rest = metric.split(".worst.", 1)
        return f"{design}.{rest}"
    return metric


def check_metric_names(selection: dict, columns: list[str], source: str) -> None:
    """Reject constraints or objectives naming metrics the table does not have."""
    sense, metric, _tie, secondary = objective_parts(selection)
    names = list(selection.get("constraints", {})) + [metric] + ([secondary[1]] if secondary else [])
    for name in names:
        if name not in columns:
            raise SpecError(
                f"{source}: selection: unknown metric {name!r}; expected one of {', '.join(sorted(columns))}"
            )


def _fmt(value: Any) -> str:
    return "n/a" if _is_missing(value) else (f"{value:.4g}" if isinstance(value, (int, float)) else str(value))


def _score(row: dict, metric: str, sense: str) -> float:
    """``metric`` of ``row`` as a number to minimise (missing counts as the worst)."""
    value = row.get(metric)
    value = math.inf if _is_missing(value) else float(value)
    return value if sense == "minimize" else -value


def select(rows: list[dict[str, Any]], selection: dict, source: str = "<spec>",
           corner_labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Pick the best candidate meeting every constraint.

    The objective ranks the feasible candidates; with ``tie_rel``, those within
    that fraction of the best value are tied and the secondary objective (default
    :data:`DEFAULT_SECONDARY` when the rows have it) decides among them.

    Parameters
    ----------
    corner_labels
        Plant corner id to its description, for the reasons of worst-case constraints.

    Returns
    -------
    dict
        ``candidate`` (the winning row), ``runners_up``, ``rejected`` (each with
        the constraints it broke), ``constraints_met``, ``reason``, ``ranking``
        (every feasible candidate, best first, with its objective value),
        ``binding_corners`` (per constraint, the winner's corner where it is
        tightest: ``<metric>_corner`` of a worst-case metric, else the nominal
        ``c0``), ``tie_break`` and ``nominal_best`` (the candidate the same
        selection would pick on the nominal plant alone, and why it lost).

    Raises
    ------
    NoFeasibleCandidate
        When no row meets every constraint; the message names the binding
        constraints and how many candidates each one rejected.
    """
    constraints = selection.get("constraints", {})
    sense, metric, tie_rel, secondary = objective_parts(selection)
    if secondary is None and tie_rel > 0 and rows and DEFAULT_SECONDARY[1] in rows[0]:
        secondary = DEFAULT_SECONDARY
    feasible, rejected = [], []
    for row in rows:
        broken = broken_constraints(row, constraints, corner_labels)
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

    ranked = sorted(feasible, key=lambda r: (_score(r, metric, sense), r["candidate_id"]))
    best_value = _score(ranked[0], metric, sense)
    tied = [r for r in ranked if tie_rel > 0 and math.isfinite(best_value)
            and abs(_score(r, metric, sense) - best_value) <= tie_rel * abs(best_value)]
    tie_break = {"tie_rel": tie_rel, "secondary": dict([secondary]) if secondary else None,
                 "tied": [r["candidate_id"] for r in tied]}
    if len(tied) > 1 and secondary:
        s_sense, s_metric = secondary
        order = sorted(tied, key=lambda r: (_score(r, s_metric, s_sense), _score(r, metric, sense), r["candidate_id"]))
        ranked = order + [r for r in ranked if r not in tied]
    best = ranked[0]
    runners = ranked[1 : 1 + RUNNERS_UP]
    reason = (
        f"{best['candidate_id']} has the {'smallest' if sense == 'minimize' else 'largest'} {metric} "
        f"({_fmt(best.get(metric))}) of the {len(feasible)} candidates out of {len(rows)} that meet "
        f"all {len(constraints)} constraints"
    )
    if len(tied) > 1 and secondary:
        s_sense, s_metric = secondary
        first = min(tied, key=lambda r: (_score(r, metric, sense), r["candidate_id"]))
        reason = (
            f"{best['candidate_id']} has the {'largest' if s_sense == 'maximize' else 'smallest'} {s_metric} "
            f"({_fmt(best.get(s_metric))}) of the {len(tied)} candidates whose {metric} is within "
            f"{tie_rel:.4g} (relative) of the best ({first['candidate_id']}, {_fmt(first.get(metric))}); "
            f"{len(feasible)} of {len(rows)} candidates meet all {len(constraints)} constraints"
        )
    if runners:
        reason += f"; next best is {runners[0]['candidate_id']} ({_fmt(runners[0].get(metric))})"
    nominal_best = _nominal_best(rows, constraints, sense, metric, best, rejected, corner_labels)
    if nominal_best and nominal_best["candidate_id"] != best["candidate_id"]:
        reason += f"; {nominal_best['why']}"
    binding = {}
    for name in constraints:
        corner = best.get(f"{name}_corner")
        corner = "c0" if _is_missing(corner) or corner in ("", None) else str(corner)
        binding[name] = {"corner": corner, "label": (corner_labels or {}).get(corner, corner),
                         "value": best.get(name)}
    return {
        "candidate": best,
        "runners_up": runners,
        "rejected": rejected,
        "constraints_met": {name: True for name in constraints},
        "reason": reason,
        "ranking": [{"candidate_id": r["candidate_id"], metric: r.get(metric)} for r in ranked],
        "binding_corners": binding,
        "tie_break": tie_break,
        "nominal_best": nominal_best,
    }


def _nominal_best(rows, constraints, sense, metric, best, rejected, corner_labels) -> dict | None:
    """The candidate the selection would pick judging the nominal plant only, and why it lost.

    None when no constraint or objective names a worst-case metric, or when no
    candidate meets the nominal constraints.
    """
    nominal_constraints = {nominal_name(k): v for k, v in constraints.items()}
    nominal_metric = nominal_name(metric)
    if nominal_constraints == constraints and nominal_metric == metric:
        return None
    basis = "simulated"
    names = list(nominal_constraints) + [nominal_metric]
    if any(row.get(f"{n.split('.')[0]}.status") == "not simulated" for row in rows for n in names if "." in n):
        # Some candidates were not simulated (simulate.candidates: feasible): the nominal
        # choice is then the analytic one, each simulated metric replaced by its analytic
        # counterpart (dropped when there is none).
        basis = "analytic"
        analytic = lambda n: n.split(".", 1)[1] if "." in n else n  # noqa: E731
        nominal_constraints = {analytic(k): v for k, v in nominal_constraints.items() if analytic(k) in rows[0]}
        nominal_metric = analytic(nominal_metric) if analytic(nominal_metric) in rows[0] else nominal_metric
    ok = [r for r in rows if not broken_constraints(r, nominal_constraints)]
    if not ok:
        return None
    pick = min(ok, key=lambda r: (_score(r, nominal_metric, sense), r["candidate_id"]))
    out = {"candidate_id": pick["candidate_id"], nominal_metric: pick.get(nominal_metric), "basis": basis}
    if pick["candidate_id"] == best["candidate_id"]:
        out["why"] = "it is also the choice on the nominal plant alone"
        return out
    broken = next((r["broken"] for r in rejected if r["candidate_id"] == pick["candidate_id"]), None)
    if broken:
        out["broken"] = broken
        out["why"] = (f"the nominal-plant choice ({basis}) {pick['candidate_id']} ({nominal_metric} "
                      f"{_fmt(pick.get(nominal_metric))}) lost because it breaks {'; '.join(broken)}")
    else:
        out["why"] = (f"the nominal-plant choice ({basis}) {pick['candidate_id']} ({nominal_metric} "
                      f"{_fmt(pick.get(nominal_metric))}) meets every constraint but ranks lower on {metric} "
                      f"({_fmt(pick.get(metric))} against "
                      f"{_fmt(best.get(metric))}) or on the tie break")
    return out

