"""Everything a sweep can refuse before any job runs: sizes, metric names, the project's names."""

from __future__ import annotations

import os

from simbaflow.core.errors import SpecError
from simbaflow.kinds import check_size, kind_of

#: Most transient runs a sweep may plan unless ``SIMBAFLOW_MAX_RUNS`` allows more.
MAX_RUNS = 5_000


def check_selection_names(spec: dict, columns: list[str], text_columns: tuple[str, ...],
                          simulated: dict[str, tuple[str, ...]]) -> None:
    """Constraints and objective name known numeric or boolean metrics.

    Parameters
    ----------
    columns
        The analytic table's columns.
    text_columns
        Those of them holding text.
    simulated
        ``{design: selectable metrics}`` of the simulated designs (``<design>.<metric>``).
    """
    source = spec.get("_path", "<spec>")
    selection = spec["selection"]
    names = [(f"selection.constraints.{m}", m, rule) for m, rule in selection.get("constraints", {}).items()]
    objective = selection.get("objective", {})
    names += [(f"selection.objective.{k}", m, None) for k, m in objective.items() if k in ("minimize", "maximize")]
    names += [(f"selection.objective.secondary.{k}", m, None) for k, m in (objective.get("secondary") or {}).items()
              if k in ("minimize", "maximize")]
    known = sorted(columns) + sorted(f"{d}.{m}" for d, metrics in simulated.items() for m in metrics)
    for key, metric, rule in names:
        design, _, name = metric.partition(".")
        name = name.removeprefix("worst.")  # the worst value over the plant corners
        if metric in columns:
            text = metric in text_columns
        elif name and design in simulated and name in simulated[design]:
            text = name == "status"
        elif name and design not in simulated and metric not in columns:
            valid = ", ".join(sorted(simulated)) or "none (the spec has no simulate section)"
            raise SpecError(f"{source}: {key}: {metric!r} names no simulated design; simulated designs: {valid}")
        else:
            raise SpecError(f"{source}: {key}: unknown metric {metric!r}; expected one of {', '.join(known)}")
        if text and not isinstance(rule, bool):
            raise SpecError(f"{source}: {key}: {metric!r} is a text column; a constraint or objective needs a "
                            "numeric or boolean metric")


def check_study(spec: dict) -> None:
    """Refuse, with one line naming the file and key, a study that would fail after running.

    Checks the candidate count, the runs count (``SIMBAFLOW_MAX_RUNS``), the
    selection's metric names against the kind's columns and the simulated
    designs, and every design, device, parameter and signal the ``simulate``
    section names against its project.
    """
    from simbaflow.select.gather import SELECTABLE
    from simbaflow.simulate.plan import check_project

    kind = kind_of(spec)
    source = spec.get("_path", "<spec>")
    n = check_size(spec)
    sim = kind.simulate_settings(spec)
    designs = sim.get("designs", {}) if sim else {}
    limit = int(os.environ.get("SIMBAFLOW_MAX_RUNS") or MAX_RUNS)
    if n * len(designs) > limit:
        raise SpecError(f"{source}: simulate: up to {n * len(designs)} runs ({n} candidates x {len(designs)} "
                        f"designs); at most {limit} are planned (set SIMBAFLOW_MAX_RUNS to allow more)")
    check_selection_names(spec, kind.columns(), kind.text_columns, dict.fromkeys(designs, SELECTABLE))
    if sim:
        check_project(sim, source)
