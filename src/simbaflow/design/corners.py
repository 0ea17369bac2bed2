"""Plant tolerance corners: the plants every candidate is judged on, and its worst case over them.

A study's ``plant_variations`` names, per plant parameter, either a tolerance
(``l_h: {pct: 20}``: the levels nominal·(1 ± 20 %)), explicit values
(``e_v: [540, 600, 660]``: those levels), or a distribution for Monte Carlo
(``r_ohm: {normal: {sd_pct: 5}}``). The corners are:

- ``c0``, the nominal plant;
- every combination of the levels of the tolerance and explicit parameters
  (a full factorial up to three of them; with more, ``samples`` points of a
  Latin hypercube over the levels, so each level appears equally often and the
  count stays bounded), the other parameters nominal;
- with distributions, ``samples`` Monte Carlo draws of those parameters (normal,
  clipped at 3 σ), the other parameters nominal.

The expansion depends only on the spec (the Latin hypercube and the draws use
``seed``), so two runs of a study judge candidates on the same plants. Kept
light (no numerical imports): ``simbaflow design`` prints the corners before
evaluating anything.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from simbaflow.core.errors import SpecError

#: Above this many tolerance/explicit parameters, a Latin hypercube replaces the full factorial.
FACTORIAL_MAX_PARAMETERS = 3
#: Keys of ``plant_variations`` that are settings, not plant parameters.
SETTINGS = ("samples", "seed")
#: Normal draws are clipped at this many standard deviations (a plant value stays physical).
CLIP_SD = 3.0


@dataclass(frozen=True)
class Corner:
    """One plant a candidate is evaluated on.

    Attributes
    ----------
    corner_id
        ``c0`` (nominal), ``c1``, ... in expansion order.
    plant
        The full plant section (nominal values with this corner's changes).
    changes
        ``{parameter: value}`` of the parameters that differ from nominal.
    origin
        ``nominal``, ``factorial``, ``latin_hypercube`` or ``monte_carlo``.
    """

    corner_id: str
    plant: dict[str, Any]
    changes: dict[str, float] = field(default_factory=dict)
    origin: str = "nominal"

    def describe(self, nominal: dict[str, Any] | None = None) -> str:
        """``c3 (l_h 4.8e-03 = nominal −20 %, e_v 660 = +10 %)``; ``c0 (nominal)``."""
        if not self.changes:
            return f"{self.corner_id} (nominal)"
        parts = []
        for name, value in self.changes.items():
            text = f"{name} {value:.6g}"
            base = (nominal or {}).get(name)
            if isinstance(base, (int, float)) and base:
                text += f" ({100.0 * (value / base - 1.0):+.4g} %)"
            parts.append(text)
        return f"{self.corner_id} ({', '.join(parts)})"


def _levels(rule: Any, nominal: float) -> list[float] | None:
    """The levels of a tolerance or explicit parameter (None for a distribution)."""
    if isinstance(rule, list):
        return [float(v) for v in rule]
    if "pct" in rule:
        pct = float(rule["pct"])
        # Rounded to 12 digits so a corner reads 0.0048, not 0.0048000000000000004.
        return [float(f"{nominal * (1.0 - pct / 100.0):.12g}"), float(f"{nominal * (1.0 + pct / 100.0):.12g}")]
    return None


def expand_corners(spec: dict, nominal: dict[str, Any]) -> list[Corner]:
    """The study's corners around the plant section ``nominal``, nominal first (only ``c0`` without
    ``plant_variations``). The study's kind says which section is its plant (``StudyKind.plant_of``).

    Raises
    ------
    SpecError
        A varied parameter that is not a number of the plant section, or a
        level that is not a positive finite number.
    """
    source = spec.get("_path", "<spec>")
    nominal = dict(nominal)
    variations = spec.get("plant_variations") or {}
    params = {k: v for k, v in variations.items() if k not in SETTINGS}
    samples = int(variations.get("samples", 8))
    rng = random.Random(int(variations.get("seed", 0)))
    numeric = [k for k, v in nominal.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    levels: dict[str, list[float]] = {}
    draws: dict[str, float] = {}
    for name, rule in params.items():
        if name not in numeric:
            raise SpecError(f"{source}: plant_variations.{name}: not a numeric plant parameter; expected one of "
                            f"{', '.join(numeric)}")
        base = float(nominal[name])
        lv = _levels(rule, base)
        if lv is None:
            draws[name] = float(rule["normal"]["sd_pct"]) / 100.0
            continue
        for i, value in enumerate(lv):
            if not math.isfinite(value) or value < 0.0 or (value == 0.0 and base > 0.0):
                where = f"[{i}]" if isinstance(rule, list) else ".pct"
                raise SpecError(f"{source}: plant_variations.{name}{where}: gives {value!r}; "
                                "expected a positive finite plant value")
        levels[name] = lv

    corners = [Corner("c0", dict(nominal))]
    seen = {_key(nominal)}

    def add(changes: dict[str, float], origin: str) -> None:
        plant = {**nominal, **changes}
        key = _key(plant)
        if key in seen:
            return
        seen.add(key)
        changed = {k: v for k, v in changes.items() if v != nominal[k]}
        corners.append(Corner(f"c{len(corners)}", plant, changed, origin))

    names = list(levels)
    if names and len(names) <= FACTORIAL_MAX_PARAMETERS:
        for combo in itertools.product(*(levels[n] for n in names)):
            add(dict(zip(names, combo)), "factorial")
    elif names:
        # Latin hypercube over the levels: column j is a shuffled, balanced list of levels;
        # reshuffled (a bounded number of times, from the same seed) until no two points coincide.
        distinct = min(samples, math.prod(len(levels[n]) for n in names))
        for _attempt in range(200):
            columns = []
            for n in names:
                col = [levels[n][i % len(levels[n])] for i in range(samples)]
                rng.shuffle(col)
                columns.append(col)
            points = [tuple(col[i] for col in columns) for i in range(samples)]
            if len(set(points)) >= distinct:
                break
        for point in points:
            add(dict(zip(names, point)), "latin_hypercube")
    for _ in range(samples if draws else 0):
        changes = {}
        for n, sd in draws.items():
            z = max(-CLIP_SD, min(CLIP_SD, rng.normalvariate(0.0, 1.0)))
            changes[n] = float(nominal[n]) * (1.0 + sd * z)
        add(changes, "monte_carlo")
    return corners


def _key(plant: dict) -> str:
    return repr(sorted((k, float(v)) for k, v in plant.items() if isinstance(v, (int, float))))


def corners_table(corners: Iterable[Corner], nominal: dict[str, Any]) -> str:
    """The corners as text, one line each (what ``simbaflow design`` prints)."""
    corners = list(corners)
    lines = [f"plant corners ({len(corners)}): every candidate is judged on each"]
    lines += [f"  {c.describe(nominal)}  [{c.origin}]" for c in corners]
    return "\n".join(lines)


@dataclass(frozen=True)
class WorstCase:
    """How one metric's worst case over the corners is taken.

    Attributes
    ----------
    metric
        The per-corner metric (a column of ``corners.csv``).
    worst
        ``max`` (larger is worse, e.g. overshoot) or ``min`` (smaller is worse, e.g. margin).
    column
        The ``candidates.csv`` column (``worst_<metric>``); ``<column>_corner`` names the corner.
    """

    metric: str
    worst: str
    column: str


def worst_of(metric: str, worst: str) -> WorstCase:
    """A :class:`WorstCase` with the usual ``worst_<metric>`` column."""
    return WorstCase(metric, worst, f"worst_{metric}")


def worst_columns(worst_cases: Iterable[WorstCase]) -> list[str]:
    """``candidates.csv`` columns the worst cases add, in order (then ``stable_all_corners``, ``n_corners``)."""
    out = []
    for w in worst_cases:
        out += [w.column, f"{w.column}_corner"]
    return out + ["stable_all_corners", "unstable_corners", "n_corners"]


def _as_worst(value: Any, worst: str) -> float:
    """A metric a corner lacks (unstable, never settles) counts as the worst possible value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if math.isnan(v):
        return math.inf if worst == "max" else -math.inf
    return v


def aggregate(corner_rows: list[dict[str, Any]], worst_cases: Iterable[WorstCase],
              stable_key: str = "stable") -> dict[str, Any]:
    """Worst-case columns of one candidate from its rows on each corner (``corner`` key in each).

    Ties go to the first corner in expansion order (the nominal one first).
    """
    out: dict[str, Any] = {}
    for w in worst_cases:
        values = [(_as_worst(r.get(w.metric), w.worst), r["corner"]) for r in corner_rows]
        pick = max if w.worst == "max" else min
        value, corner = pick(values, key=lambda vc: vc[0])
        out[w.column], out[f"{w.column}_corner"] = value, corner
    unstable = [r["corner"] for r in corner_rows if r.get(stable_key) is not True and r.get(stable_key) != 1]
    out["stable_all_corners"] = not unstable
    out["unstable_corners"] = " ".join(unstable)
    out["n_corners"] = len(corner_rows)
    return out


def evaluate_on_corners(spec: dict, cand: dict, nominal_row: dict[str, Any], corners: list[Corner],
                        evaluate_corner: Callable[[dict, dict, dict], dict], metrics: Iterable[str],
                        worst_cases: Iterable[WorstCase]) -> dict[str, Any]:
    """A candidate's nominal row with its worst-case columns, ``corners`` (one row per corner)
    and ``corner_responses`` (``{corner: (t, y)}`` of the rows that have a discrete response).

    Parameters
    ----------
    nominal_row
        The candidate's evaluation on the nominal plant (reused as corner ``c0``).
    evaluate_corner
        ``evaluate_corner(spec, cand, plant) -> row``: the candidate (gains designed
        on the nominal plant) analysed on ``plant``.
    metrics
        The row keys a corner row keeps (``corners.csv``'s metric columns).
    """
    metrics = list(metrics)
    nominal = corners[0].plant
    rows, responses = [], {}
    for corner in corners:
        row = nominal_row if corner.corner_id == "c0" else evaluate_corner(spec, cand, corner.plant)
        if "discrete" in row.get("responses", {}):
            responses[corner.corner_id] = row["responses"]["discrete"]
        rows.append({"candidate_id": cand["candidate_id"], "corner": corner.corner_id,
                     "corner_label": corner.describe(nominal),
                     **{f"plant.{k}": corner.plant[k] for k in nominal if isinstance(nominal[k], (int, float))
                        and not isinstance(nominal[k], bool)},
                     **{m: row.get(m, math.nan) for m in metrics}})
    out = dict(nominal_row)
    out.update(aggregate(rows, worst_cases))
    out["corners"] = rows
    # The discrete step response on each corner: the report's envelope around the nominal one.
    out["corner_responses"] = responses
    return out
