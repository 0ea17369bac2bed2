"""The selection document: what ``selection.json`` holds, built in one place.

The select step writes it; promotion builds it again from the spec and the
hash-checked tables and refuses a selection that differs from it.
"""

from __future__ import annotations

from typing import Any

from simbaflow.core.errors import SpecError
from simbaflow.core.tables import jsonable
from simbaflow.select.ranking import check_metric_names, select


def selection_document(spec: dict, kind_name: str, plant: dict, corners: list, rows: list[dict[str, Any]],
                       columns: list[str], engine: str, tables_sha256: dict[str, str],
                       source: str) -> dict[str, Any]:
    """Rank ``rows`` against the spec's selection and return the document (JSON values).

    Parameters
    ----------
    kind_name, plant
        The study's kind and its nominal plant section.
    corners
        The plant corners every candidate was judged on (nominal first).
    rows, columns
        Candidate rows (with simulated ``<design>.<metric>`` columns merged) and their names.
    engine
        Which engines ran the simulations (``analytic`` when none did).
    tables_sha256
        SHA-256 of the tables the rows were read from.

    Returns
    -------
    dict
        Every key of ``selection.json`` but ``spec_path`` and ``provenance``.
    """
    selection = spec["selection"]
    check_metric_names(selection, columns, source)
    for name in selection.get("pareto", []):
        if name not in columns:
            raise SpecError(f"{source}: selection.pareto: unknown metric {name!r}; expected one of "
                            f"{', '.join(sorted(columns))}")
    labels = {c.corner_id: c.describe(corners[0].plant) for c in corners}
    choice = select(rows, selection, source, labels)
    best = choice["candidate"]
    return jsonable({
        "study": spec["study"],
        "kind": kind_name,
        "spec_sha256": spec["_sha256"],
        "candidate_id": best["candidate_id"],
        "candidate": best,
        "realisation": best.get("realisation", best.get("discretisation")),
        "fixed_point": {**spec["fixed_point"], **({"q_format": best["q_format"]} if "q_format" in best else {})},
        "controller": spec["controller"],
        "plant": plant,
        "constraints": selection["constraints"],
        # The primary objective; tie_rel and the secondary are in tie_break.
        "objective": {k: v for k, v in selection["objective"].items() if k in ("minimize", "maximize")},
        "constraints_met": choice["constraints_met"],
        "reason": choice["reason"],
        "runners_up": choice["runners_up"],
        "rejected": choice["rejected"],
        "ranking": choice["ranking"],
        "engine": engine,
        "run_files": {k.split(".")[0]: v for k, v in best.items() if k.endswith(".run_file")},
        "tables_sha256": tables_sha256,
        # Robust selection (plant_variations): the corners every candidate was judged on, the
        # winner's binding corner per constraint, the tie break and the nominal-plant choice.
        "corners": [{"corner": c.corner_id, "label": labels[c.corner_id], "origin": c.origin,
                     "changes": c.changes} for c in corners],
        "binding_corners": choice["binding_corners"],
        "tie_break": choice["tie_break"],
        "nominal_best": choice["nominal_best"],
        "pareto": selection.get("pareto"),
    })
